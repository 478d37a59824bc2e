"""Loading and validation: each export quirk, each hard error (from the fixture corpus)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from icp_research.data import cleaning, loading, validation
from icp_research.data.cleaning import parse_bands, parse_dates, parse_flags, parse_numbers
from icp_research.data.config import load_config
from icp_research.errors import ConfigError, DataError

from .conftest import FIXTURES, run_cli, write_project

BROKEN = sorted(p for p in (FIXTURES / "broken").iterdir() if p.is_dir())


def _digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


@pytest.mark.parametrize("case", BROKEN, ids=[p.name for p in BROKEN])
def test_broken_input_gives_one_clear_line_and_exit_2(case, capsys):
    from icp_research.cli import main

    before = _digest(case)
    code = main(["validate", "--config", str(case / "icp.toml")])
    stderr = capsys.readouterr().err
    assert code == 2, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert errors, stderr
    for expected in (case / "expected.txt").read_text().splitlines():
        if expected:
            assert any(expected in line for line in errors), f"{expected!r} not in {errors}"
    assert _digest(case) == before, "validate must not modify its inputs"


def test_validate_from_the_command_line_exits_2_without_traceback():
    proc = run_cli("validate", "--config", str(FIXTURES / "broken" / "duplicate_ids" / "icp.toml"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "occur more than once" in proc.stderr


ACCOUNTS = (
    "\ufeffAccount ID,Company,Industry,Employees,Annual Revenue,CRM,Uses SSO,Region,Created,Contact Email\n"
    'A1,Acme,SaaS,"1,200","$1,200,000.50",HubSpot,Yes,NA,03/15/2024,a@acme.test\n'
    "A2,Beta,NULL,45,(300),None,No,EMEA,04/01/2024,b@beta.test\n"
    "A3,Gamma,N/A,,1.5M,,TRUE,,05/20/2024,\n"
    "A4,Delta,Retail,None,,Salesforce,false,#N/A,,\n"
)
OPPORTUNITIES = (
    "Opportunity ID,Account,Stage,Created,Closed,Amount,Product\n"
    'O1,A1,Won,2024-03-20,2024-05-01,"12,000.00",X\n'
    "O2,A2,Lost,2024-04-02T10:00:00Z,2024-06-11,3000,Y\n"
    "O3,,Open,2024-06-01,,,Z\n"
    "O4,A3,Won,2024-06-05,2024-08-01,$950,Z\n"
)
CONFIG = """
[project]
name = "Quirks"
[tables.accounts]
path = "accounts.csv"
date_format = "%m/%d/%Y"
[tables.accounts.columns]
account_id = "Account ID"
name = "Company"
industry = "Industry"
employees = "Employees"
annual_revenue = "Annual Revenue"
crm = "CRM"
region = "Region"
created_at = "Created"
[tables.opportunities]
path = "opportunities.csv"
[tables.opportunities.columns]
opportunity_id = "Opportunity ID"
account_id = "Account"
stage = "Stage"
created_at = "Created"
closed_at = "Closed"
amount = "Amount"
"""


def test_bom_currency_thousands_and_flags(quirky_ok):
    quirky = quirky_ok
    accounts = quirky.tables["accounts"].set_index("account_id")
    assert list(accounts.index) == ["A1", "A2", "A3", "A4"]  # BOM stripped from the first header
    assert accounts.loc["A1", "employees"] == 1200
    assert accounts.loc["A1", "annual_revenue"] == pytest.approx(1_200_000.50)
    assert accounts.loc["A2", "annual_revenue"] == 300
    assert accounts.loc["A3", "annual_revenue"] == pytest.approx(1_500_000)
    # "None" is a value in a text column but "no value" in a number column.
    assert np.isnan(accounts.loc["A4", "employees"])
    assert accounts.loc["A2", "crm"] == "None"
    assert pd.isna(accounts.loc["A3", "crm"])
    # NULL, N/A, #N/A and blanks are missing; "NA" (North America) is a region.
    assert pd.isna(accounts.loc["A2", "industry"]) and pd.isna(accounts.loc["A3", "industry"])
    assert accounts.loc["A1", "region"] == "NA"
    assert pd.isna(accounts.loc["A4", "region"])
    # Unmapped "Uses SSO" is kept as a flag attribute; the contact email is dropped.
    assert accounts["uses_sso"].tolist() == [True, False, True, False]
    assert "contact_email" not in accounts.columns
    assert accounts.loc["A1", "created_at"] == pd.Timestamp("2024-03-15")
    assert "uses_sso" in quirky.attributes.categorical
    assert "employees" in quirky.attributes.numeric


def test_negative_in_parentheses_is_an_error_for_money(tmp_path):
    config = write_project(
        tmp_path, {"accounts.csv": ACCOUNTS, "opportunities.csv": OPPORTUNITIES}, CONFIG
    )
    report = validation.validate(config)
    # (300) is accounting notation for -300: negative revenue is impossible.
    assert any("negative values" in p.message and p.rows == [3] for p in report.errors)


@pytest.fixture
def quirky_ok(tmp_path):
    config = write_project(
        tmp_path,
        {"accounts.csv": ACCOUNTS.replace("(300)", "300"), "opportunities.csv": OPPORTUNITIES},
        CONFIG,
    )
    return loading.load_tables(config)


def test_stages_dates_and_warnings(quirky_ok):
    deals = quirky_ok.tables["opportunities"].set_index("opportunity_id")
    assert deals["stage"].tolist() == ["won", "lost", "open", "won"]  # Won/Lost/Open understood
    assert deals.loc["O1", "amount"] == 12000
    assert deals.loc["O4", "amount"] == 950
    assert deals.loc["O2", "created_at"] == pd.Timestamp("2024-04-02")  # time zone dropped
    warnings = [p.line() for p in quirky_ok.report.warnings]
    assert any("1 open deals have no account" in w and "row 4" in w for w in warnings)
    assert any('columns not used (not mapped): "Product"' in w for w in warnings)
    infos = [p.line() for p in quirky_ok.report.infos]
    assert any("personal-data columns dropped" in i and "Contact Email" in i for i in infos)


def test_one_source_column_feeds_two_canonical_names(tmp_path):
    config = write_project(
        tmp_path,
        {"accounts.csv": "account,sector\nAcme,tech\nBeta,retail\n"},
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\naccount_id = "account"\nname = "account"\nindustry = "sector"\n'
        '[tables.accounts.values.industry]\n"tech" = "technology"\n',
    )
    accounts = loading.load_tables(config).tables["accounts"]
    assert accounts["account_id"].tolist() == ["Acme", "Beta"]
    assert accounts["name"].tolist() == ["Acme", "Beta"]
    assert accounts["industry"].tolist() == ["technology", "retail"]


def test_mrr_becomes_arr_and_parquet_and_excel_inputs(tmp_path):
    accounts = pd.DataFrame({"id": ["A1", "A2"], "Segment": ["x", "y"]})
    accounts.to_excel(tmp_path / "accounts.xlsx", sheet_name="data", index=False)
    subs = pd.DataFrame(
        {
            "account_id": ["A1", "A2"],
            "start_date": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "end_date": [pd.NaT, pd.Timestamp("2024-12-31")],
            "MRR": [100.0, 250.0],
        }
    )
    subs.to_parquet(tmp_path / "subs.parquet")
    config = write_project(
        tmp_path,
        {},
        '[tables.accounts]\npath = "accounts.xlsx"\nsheet = "data"\n[tables.accounts.columns]\naccount_id = "id"\n'
        '[tables.subscriptions]\npath = "subs.parquet"\n',
    )
    dataset = loading.load_tables(config)
    assert dataset.tables["subscriptions"]["arr"].tolist() == [1200.0, 3000.0]
    assert dataset.tables["accounts"]["segment"].tolist() == ["x", "y"]
    # A sheet name that is not in the workbook: the fix names the sheets it has.
    config.write_text(config.read_text().replace('sheet = "data"', 'sheet = "Sheet1"'))
    with pytest.raises(DataError) as raised:
        loading.load_tables(config)
    (line,) = [x for x in raised.value.problems if "cannot read the sheet" in x]
    assert line.endswith(
        'fix: set sheet = "data" (or another of its sheets: "data") under [tables.accounts]'
    )


def test_parsers_directly():
    values, bad = parse_numbers(
        pd.Series(["$1,234.50", "1 234", "(200)", "12k", "3.4M", "15%", "n/a", "abc", ""])
    )
    assert values.iloc[:6].tolist() == [1234.5, 1234.0, -200.0, 12000.0, 3_400_000.0, 15.0]
    assert bad.tolist() == [False] * 7 + [True, False]
    values, bad = parse_numbers(pd.Series(["1.234,50", "2,5"]), decimal=",")
    assert values.tolist() == [1234.5, 2.5]
    dates, bad = parse_dates(pd.Series(["15/03/2024", "31/12/2025", "nope"]), "%d/%m/%Y")
    assert dates.iloc[0] == pd.Timestamp("2024-03-15") and bad.tolist() == [False, False, True]
    flags, bad = parse_flags(pd.Series(["Yes", "no", "TRUE", "f", "1", "maybe", None]))
    assert flags.tolist()[:5] == [True, False, True, False, True]
    assert bad.tolist() == [False] * 5 + [True, False]


def test_banded_sizes_are_cut_where_one_band_ends_and_the_next_begins():
    from icp_research.methods.binning import apply_bins, cut_points

    rng = np.random.default_rng(4)
    bands = ["1-10", "11-50", "51-200", "201-1,000", "1,001+"]
    cells = pd.Series(rng.choice(bands, 2000, p=[0.2, 0.3, 0.25, 0.15, 0.1]))
    values = parse_bands(cells)
    cuts = cut_points(values, 5)
    # Read at midpoints (5.5, 30.5, 125.5, 600.5) the quintiles cut at 30, 150, 600: inside the
    # bands 11-50, 51-200 and 201-1,000. Now every cut is where a band begins.
    assert cuts == [11.0, 51.0, 201.0]
    binned = apply_bins(values, cuts)
    # Each band falls in one bin; the last bin holds the two largest bands.
    assert pd.crosstab(cells, binned).gt(0).sum(axis=1).eq(1).all()
    assert list(binned.categories[:4]) == ["< 11", "11 to < 51", "51 to < 201", ">= 201"]
    # A column of many values keeps its round cut points.
    assert cut_points(np.arange(1, 1001, dtype=float), 4) == [250.0, 500.0, 750.0]


def test_size_bands_are_read_as_lead_scoring_reads_them():
    bands = pd.Series(
        ["51-200", "1,001 - 5,000", "201 to 500", "10,001+", "10000 or more", "5000+ employees"]
        + ["1-10 employees", "51\u2013200", "200-51", "abc", "12", "$1M-$10M"]
    )
    got = parse_bands(bands).tolist()
    # A band is its lower end, closed or open: bins then cut between bands, not inside one.
    assert got[:8] == [51.0, 1001.0, 201.0, 10001.0, 10000.0, 5000.0, 1.0, 51.0]
    # A band upside down, text, and a plain number are not bands; money bands are.
    assert np.isnan(got[8:11]).all() and got[11] == 1_000_000.0
    assert parse_bands(pd.Series(["1.001-5.000"]), decimal=",").tolist() == [1001.0]
    # A lead's band scores as the number its account's band was read as in the study.
    from icp_research.scoring.model import coerce_numeric

    bands = bands.drop([8, 9, 10])
    np.testing.assert_array_equal(coerce_numeric(bands)[0], parse_bands(bands).to_numpy())


def test_a_size_column_of_bands_loads_with_a_warning_and_a_stray_value_stays_an_error(tmp_path):
    banded = ACCOUNTS.replace('"1,200"', '"1,001-5,000"').replace(",45,", ",11-50,")
    config = write_project(
        tmp_path,
        {"accounts.csv": banded.replace("(300)", "300"), "opportunities.csv": OPPORTUNITIES},
        CONFIG,
    )
    dataset = loading.load_tables(config)
    employees = dataset.tables["accounts"].set_index("account_id")["employees"]
    assert employees.loc[["A1", "A2"]].tolist() == [1001.0, 11.0]
    assert employees.loc[["A3", "A4"]].isna().all()
    (warning,) = [p for p in dataset.report.warnings if "ranges" in p.message]
    assert warning.rows == [2, 3] and '"11-50" as 11' in warning.message
    assert not dataset.report.errors
    # One cell that is neither a number nor a band: the column is an error, as before.
    config = write_project(
        tmp_path / "stray",
        {"accounts.csv": banded.replace(",None,", ",many,"), "opportunities.csv": OPPORTUNITIES},
        CONFIG,
    )
    report = validation.validate(config)
    assert any("are not numbers" in p.message and "employees" in p.column for p in report.errors)


def test_counts_with_dots_separating_thousands_are_an_error_naming_the_decimal_fix(tmp_path):
    """ "1.391" employees (a German export, with no money column to give the decimal comma away)
    is 1,391 people, not 1.391: with the decimal mark "." it is an error naming the file, the
    column, the rows and the fix; with decimal = "," it is read as 1,391. Fractions elsewhere
    (a usage value, an ARR) and a count without groups of three ("2.5" seats) are left alone."""
    accounts = "Account ID;Mitarbeiter\nA1;15\nA2;1.391\nA3;892\nA4;12.500\nA5;1.391\nA6;\n"
    subscriptions = (
        "account_id;start_date;arr;seats\nA1;2024-01-01;1200.5;2.5\nA2;2024-02-01;99.125;3\n"
    )
    usage = "account_id;date;metric;value\nA1;2024-03-01;hours;1.250\n"
    config_text = (
        '[tables.accounts]\npath = "accounts.csv"\ndelimiter = ";"\n'
        '[tables.accounts.columns]\naccount_id = "Account ID"\nemployees = "Mitarbeiter"\n'
        '[tables.subscriptions]\npath = "subscriptions.csv"\ndelimiter = ";"\n'
        '[tables.usage]\npath = "usage.csv"\ndelimiter = ";"\n'
    )
    files = {"accounts.csv": accounts, "subscriptions.csv": subscriptions, "usage.csv": usage}
    report = validation.validate(write_project(tmp_path / "dot", files, config_text))
    (error,) = report.errors
    assert error.line() == (
        'accounts.csv, column "Mitarbeiter -> employees": 3 values look like whole numbers with '
        '"." separating thousands ("1.391", "12.500"), which the decimal mark "." reads as '
        'fractions ("1.391" as 1.391 employees, a count) (rows 3, 5, 6); fix: add decimal = "," '
        'under [tables.accounts] to read "." as the thousands separator (then "," is the '
        "decimal mark of every number in the table)"
    )
    # The fix: the same cells read as whole numbers.
    fixed = config_text.replace('path = "accounts.csv"\n', 'path = "accounts.csv"\ndecimal = ","\n')
    dataset = loading.load_tables(write_project(tmp_path / "comma", files, fixed))
    employees = dataset.tables["accounts"].set_index("account_id")["employees"]
    assert employees.loc[["A1", "A2", "A3", "A4", "A5"]].tolist() == [15, 1391, 892, 12500, 1391]
    subs = dataset.tables["subscriptions"]
    assert subs["seats"].tolist() == [2.5, 3.0] and subs["arr"].tolist() == [1200.5, 99.125]
    assert dataset.tables["usage"]["value"].tolist() == [1.25]
    # Whole numbers in groups of three that are not numbers with "." at all ("12.500.000"):
    # the existing error now names the same fix.
    many = files | {"accounts.csv": accounts.replace("12.500", "12.500.000")}
    report = validation.validate(write_project(tmp_path / "many", many, config_text))
    assert [e.message for e in report.errors] == [
        '1 values are not numbers ("12.500.000")',
        '2 values look like whole numbers with "." separating thousands ("1.391"), which the '
        'decimal mark "." reads as fractions ("1.391" as 1.391 employees, a count)',
    ]
    assert 'add decimal = "," under [tables.accounts]' in report.errors[0].fix


def test_errors_are_collected_not_fail_fast(tmp_path):
    config = write_project(
        tmp_path,
        {
            "accounts.csv": "Account ID,Employees\nA1,ten\nA1,5\n",
            "opportunities.csv": "opportunity_id,account_id,stage,created_at\nO1,A1,Maybe,2024-01-01\n",
        },
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\naccount_id = "Account ID"\nemployees = "Employees"\n'
        '[tables.opportunities]\npath = "opportunities.csv"\n',
    )
    with pytest.raises(DataError) as info:
        loading.load_tables(config)
    lines = info.value.problems
    assert len(lines) == 3
    assert any("not numbers" in line for line in lines)
    assert any("occur more than once" in line for line in lines)
    assert any('"Maybe"' in line for line in lines)


def test_toml_error_names_the_line(tmp_path):
    path = tmp_path / "icp.toml"
    path.write_text('[project]\nname = "x"\n\n[tables.accounts\npath = "a.csv"\n')
    with pytest.raises(ConfigError, match="line 4"):
        load_config(path)


def test_maven_example_loads_with_its_quirks():
    config = Path(__file__).parent.parent / "examples" / "maven-crm" / "icp.toml"
    if (
        not config.exists()
        or not (config.parent / load_config(config).tables["accounts"].path).exists()
    ):
        pytest.skip("the public Maven export is not beside this checkout")
    dataset = loading.load_tables(config)
    accounts = dataset.tables["accounts"]
    deals = dataset.tables["opportunities"]
    assert len(accounts) == 85 and len(deals) == 8800
    assert "technolgy" not in set(accounts["industry"]) and "technology" in set(
        accounts["industry"]
    )
    assert accounts["parent_company"].isna().sum() == 70  # the literal NULL is missing
    assert deals["amount"].isna().sum() == 2089  # -1 on open deals declared missing
    assert deals["stage"].value_counts().to_dict() == {"won": 4238, "lost": 2473, "open": 2089}
    assert not dataset.report.errors


# Large text columns are parsed once per distinct value; the results must be those of parsing
# every row.
MESSY = {
    "numbers": [
        "$1,234.50",
        " 1 234 ",
        "(200)",
        "12k",
        "3.4M",
        "15%",
        "n/a",
        "abc",
        "",
        "None",
        "USD 300",
        "200-",
        "1e3",
        "7",
        " 8.5 ",
        "-",
        "1.234,5",
        "NULL",
        "€1.5k",
    ],
    "dates": [
        "2024-03-01",
        " 2024-06-01T10:00:00Z",
        "2024-06-01T23:30:00-05:00",
        "",
        "N/A",
        "not a date",
        "03/15/2024",
        "2024-02-30",
        "2025-12-31 ",
    ],
    "flags": ["Yes", "no", " TRUE", "0", "maybe", "", "N/A", "f", "Y", "off"],
    "text": [" SaaS ", "NULL", "None", "N/A", "", "Retail", "retail ", "#N/A", "NA"],
}


@pytest.mark.parametrize("kind", sorted(MESSY))
def test_parsing_distinct_values_equals_parsing_every_row(kind, rng, monkeypatch):
    corpus = np.array(MESSY[kind], dtype=object)
    column = pd.Series(corpus[rng.integers(0, len(corpus), 30_000)], index=np.arange(2, 30_002))
    parse = {
        "numbers": lambda s: parse_numbers(s, extra_missing=["-"]),
        "dates": lambda s: parse_dates(s, None),
        "flags": parse_flags,
        "text": lambda s: (cleaning.as_text(s, {"", "NULL", "N/A", "#N/A"}),),
    }[kind]
    monkeypatch.setattr(cleaning, "DISTINCT_MIN_ROWS", 10**9)
    every_row = parse(column)
    monkeypatch.setattr(cleaning, "DISTINCT_MIN_ROWS", 0)
    distinct = parse(column)
    for expected, got in zip(every_row, distinct, strict=True):
        pd.testing.assert_series_equal(got, expected)
    assert distinct[0].notna().any()


def test_validation_messages_do_not_depend_on_table_size_shortcuts(tmp_path, rng, monkeypatch):
    n = 12_000
    stages = np.array(["Closed Won", "closed lost", "Open", "Maybe", " Won "], dtype=object)
    amounts = np.array(["$1,200.00", "(50)", "abc", "", "3k"], dtype=object)
    dates = np.array(["2024-01-05", "01/02/2024", "", "2024-13-01"], dtype=object)
    lines = ["Opportunity ID,Account,Stage,Created,Amount,Type"]
    for i in range(n):
        lines.append(
            f"O{i},A{i % 7},{stages[rng.integers(0, 5)]},{dates[rng.integers(0, 4)]},"
            f'"{amounts[rng.integers(0, 5)]}",{["New Business", "Upsell", "renewal"][i % 3]}'
        )
    config = write_project(
        tmp_path,
        {
            "accounts.csv": "Account ID\n" + "\n".join(f"A{i}" for i in range(7)) + "\n",
            "opportunities.csv": "\n".join(lines) + "\n",
        },
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.opportunities]\npath = "opportunities.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Opportunity ID"\naccount_id = "Account"\nstage = "Stage"\n'
        'created_at = "Created"\namount = "Amount"\ntype = "Type"\n'
        '[tables.opportunities.values.stage]\n"Closed Won" = "won"\n',
    )
    monkeypatch.setattr(cleaning, "DISTINCT_MIN_ROWS", 10**9)
    every_row = loading.load_dataset(config)
    monkeypatch.setattr(cleaning, "DISTINCT_MIN_ROWS", 0)
    distinct = loading.load_dataset(config)
    assert distinct.report.lines() == every_row.report.lines()
    assert any('"Maybe"' in line for line in distinct.report.lines("error"))
    for name, table in every_row.tables.items():
        pd.testing.assert_frame_equal(distinct.tables[name], table)


def test_snapshot_reads_derived_frames_only_when_used(tmp_path, quirky_ok):
    facts = pd.DataFrame(
        {
            "a": [1] * 60,
            "reason": pd.array([None] * 60, dtype="string"),  # nothing to share
            "segment": pd.array(["SMB", None, "Enterprise"] * 20, dtype="string"),
        }
    )
    quirky_ok.derived = {"facts": facts, "deals": pd.DataFrame({"b": [2.0]})}
    quirky_ok.derived_meta = {"as_of": "2024-12-31"}
    quirky_ok.save(tmp_path / "snapshot")
    # The deal facts are not written: whoever shares the snapshot rebuilds them.
    assert not (tmp_path / "snapshot" / "_deals.parquet").exists()
    (tmp_path / "snapshot" / "_facts.parquet").rename(tmp_path / "facts.parquet")
    opened = loading.Dataset.open(tmp_path / "snapshot", quirky_ok.config)
    assert sorted(opened.derived) == ["facts"]
    assert opened.derived_meta == {"as_of": "2024-12-31"}
    pd.testing.assert_frame_equal(opened.tables["accounts"], quirky_ok.tables["accounts"])
    with pytest.raises(FileNotFoundError):  # not read until asked for
        opened.derived["facts"]
    (tmp_path / "facts.parquet").rename(tmp_path / "snapshot" / "_facts.parquet")
    pd.testing.assert_frame_equal(opened.derived["facts"], facts)


def test_shared_snapshot_rebuilds_the_deal_facts_the_run_computed(tmp_path):
    import icp_research as icp

    study = icp.load_demo()
    study.precompute()
    study.dataset.save(tmp_path / "snapshot")
    assert loading.share_snapshot(tmp_path / "snapshot") == len(study.dataset.tables) + 2
    try:
        opened = icp.open_study(data_dir=tmp_path / "snapshot")
        assert sorted(opened.dataset.derived) == ["deals", "facts"]
        deals = opened.deals
        # Rebuilt over the shared opportunities' own arrays, not a copy of them.
        shared = opened.dataset.tables["opportunities"]
        assert np.shares_memory(deals["closed_at"].to_numpy(), shared["closed_at"].to_numpy())
        assert not deals["won"].array._data.flags.writeable  # read-only, like every shared frame
        expected = study.deals
        assert deals["opportunity_id"].dtype.storage == "pyarrow"  # a key: Arrow's buffers
        pd.testing.assert_frame_equal(
            deals.astype({"opportunity_id": "string[python]"}), expected, check_dtype=True
        )
        assert deals.attrs == expected.attrs
    finally:
        loading._SHARED.clear()


def test_money_cells_name_the_currency_the_reports_write_and_a_mix_is_a_warning(tmp_path):
    from icp_research.data.study import Study
    from icp_research.formatting import fmt_money

    accounts = "Account ID,Industry\nA1,SaaS\nA2,Retail\nA3,SaaS\n"
    deals = (
        "Deal ID,Account ID,Stage,Created,Closed,Amount\n"
        'D1,A1,Won,2024-01-05,2024-02-01,"1.200,50 €"\n'
        'D2,A2,Lost,2024-01-09,2024-03-01,"€900"\n'
        'D3,A3,Won,2024-02-05,2024-04-01,"2.000 EUR"\n'
        "D4,A1,Won,2024-03-05,2024-05-01,300\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\nindustry = "Industry"\n'
        '[tables.opportunities]\npath = "opportunities.csv"\ndecimal = ","\n'
        "[tables.opportunities.columns]\n"
        'opportunity_id = "Deal ID"\naccount_id = "Account ID"\nstage = "Stage"\n'
        'created_at = "Created"\nclosed_at = "Closed"\namount = "Amount"\n'
        '[tables.opportunities.values.stage]\n"Won" = "won"\n"Lost" = "lost"\n'
    )
    path = write_project(tmp_path, {"accounts.csv": accounts, "opportunities.csv": deals}, config)
    dataset = loading.load_tables(path)
    assert dataset.tables["opportunities"]["amount"].tolist() == [1200.5, 900.0, 2000.0, 300.0]
    assert dataset.report.currencies == {"€": 3} and dataset.currency == "€"
    assert not [p for p in dataset.report.warnings if "currencies" in p.message]
    try:
        Study(dataset)  # a study writes its money in its data's currency
        assert fmt_money(12_300) == "€12.3k"
        # The snapshot keeps it, so that report kernels write the same.
        reopened = loading.Dataset.open(dataset.save(tmp_path / "snapshot"), dataset.config)
        assert reopened.currency == "€"
        # [project] currency wins over the cells.
        configured = write_project(
            tmp_path / "chf",
            {"accounts.csv": accounts, "opportunities.csv": deals},
            '[project]\ncurrency = "CHF"\n' + config,
        )
        Study(loading.load_tables(configured))
        assert fmt_money(950) == "CHF 950"
        # Two currencies in one column: a warning naming the rows of the fewer one.
        mixed = write_project(
            tmp_path / "mixed",
            {"accounts.csv": accounts, "opportunities.csv": deals.replace("€900", "$900")},
            config,
        )
        dataset = loading.load_tables(mixed)
        (warning,) = [p for p in dataset.report.warnings if "currencies" in p.message]
        assert "2 currencies (€ 2, $ 1 rows)" in warning.message and warning.rows == [3]
        assert dataset.currency == "¤"
        # No mark at all: $, as before.
        plain = write_project(
            tmp_path / "plain",
            {
                "accounts.csv": accounts,
                "opportunities.csv": deals.replace("€", "").replace(" EUR", ""),
            },
            config,
        )
        Study(loading.load_tables(plain))
        assert fmt_money(950) == "$950"
    finally:
        from icp_research.formatting import set_currency

        set_currency("$")


def test_project_currency_must_be_text(tmp_path):
    from icp_research.data.config import load_config

    accounts = '[tables.accounts]\npath = "a.csv"\n[tables.accounts.columns]\naccount_id = "Id"\n'
    config = write_project(tmp_path, {"a.csv": "Id\nA1\n"}, "[project]\ncurrency = 3\n" + accounts)
    with pytest.raises(
        ConfigError, match=r'currency = 3 must be text in quotes, e.g. currency = "EUR"'
    ):
        load_config(config)
    for written, symbol in (("eur", "€"), ("R$", "R$"), ("CHF", "CHF ")):
        config.write_text(f'[project]\ncurrency = "{written}"\n' + accounts)
        assert load_config(config).currency == symbol


def test_billing_rows_never_linked_to_an_account_are_left_out_with_one_warning(tmp_path):
    subs = "Customer,Start,ARR\nA1,2024-01-01,1000\n,2024-02-01,500\nA2,2024-03-01,700\n"
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.subscriptions]\npath = "subs.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "Customer"\nstart_date = "Start"\narr = "ARR"\n'
    )
    files = {"accounts.csv": "Account ID\nA1\nA2\n", "subs.csv": subs}
    report = validation.validate(write_project(tmp_path, files, config))
    assert report.ok
    assert [(p.message, p.rows) for p in report.warnings if p.column == "Customer"] == [
        (
            "1 rows have no account_id and are left out (1 of them with no end date, 500 ARR "
            "that the reports' ARR does not count)",
            [3],
        )
    ]
    # A table none of whose rows has an account is a mapping mistake: an error.
    files["subs.csv"] = "Customer,Start,ARR\n,2024-01-01,1000\n,2024-02-01,500\n"
    report = validation.validate(write_project(tmp_path / "none", files, config))
    assert [p.message for p in report.errors] == ["2 rows have no account_id (a required value)"]


def test_arr_from_a_price_per_billing_interval_as_billing_exports_give_it(tmp_path):
    accounts = "Account ID\nA1\nA2\nA3\nA4\n"
    subs = (
        "Customer,Created,Plan Amount,Plan Interval,Quantity,MRR,Price\n"
        "A1,2024-01-01,4900,month,1,1,1\n"
        "A2,2024-01-01,50000,year,3,1,1\n"
        "A3,2024-01-01,12000,Quarterly,2,1,1\n"
        "A4,2024-01-01,1000,Monatlich,1,1,1\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.subscriptions]\npath = "subs.csv"\ncents = true\nprice_per_seat = true\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "Customer"\nstart_date = "Created"\nprice = "Plan Amount"\n'
        'interval = "Plan Interval"\nseats = "Quantity"\n'
    )
    files = {"accounts.csv": accounts, "subs.csv": subs}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    arr = dataset.tables["subscriptions"].set_index("account_id")["arr"]
    # Stripe's amounts are cents per unit: 49.00 a month; 500.00 x 3 seats a year; 120 x 2 a
    # quarter; 10 a month (German). The export's own MRR and Price columns are not read.
    assert arr.to_dict() == {"A1": 588.0, "A2": 1500.0, "A3": 960.0, "A4": 120.0}
    assert not {"price", "interval", "mrr"} & set(dataset.tables["subscriptions"].columns)

    def errors(text: str) -> list[str]:
        path = write_project(tmp_path / str(len(text)), files, text)
        return [p.message for p in validation.validate(path).errors]

    assert errors(config.replace('interval = "Plan Interval"\n', "")) == [
        "price is mapped without interval: a price is per billing interval"
    ]
    assert errors(config + 'mrr = "MRR"\n') == [
        "both arr / mrr and price with interval are mapped: ARR would come from two columns"
    ]
    weekly = files["subs.csv"].replace("Quarterly", "every 2 weeks")
    path = write_project(tmp_path / "weekly", {**files, "subs.csv": weekly}, config)
    (error,) = validation.validate(path).errors
    assert error.message == (
        '1 rows have a billing interval that is not a known one ("every 2 weeks")'
    )
    assert error.fix.startswith(
        'recode them under [tables.subscriptions.values.interval], e.g. "every 2 weeks" = "month"'
    )
    # Without price and interval mapped, a Price column stays unread and MRR is ARR / 12.
    plain = config.replace('price = "Plan Amount"\ninterval = "Plan Interval"\n', 'mrr = "MRR"\n')
    dataset = loading.load_tables(write_project(tmp_path / "plain", files, plain))
    assert dataset.tables["subscriptions"]["arr"].tolist() == [0.12] * 4


def test_a_billing_period_of_several_intervals_divides_the_arr(tmp_path):
    # Paddle's billing_cycle.interval / .frequency, Stripe's interval / interval_count,
    # Recurly's interval_unit / interval_length: "3 month" bills every quarter. Unmapped, a
    # column of whole counts is read as the count, with a note (a first user's Recurly ARR was
    # 4.7x too high, with nothing said); one that holds anything else is a warning.
    subs = (
        "customer,created_at,billing_cycle.interval,billing_cycle.frequency,unit_price\n"
        "A1,2024-01-01,month,1,1000\nA2,2024-01-01,month,3,3000\nA3,2024-01-01,year,,12000\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.subscriptions]\npath = "subs.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "customer"\nstart_date = "created_at"\nprice = "unit_price"\n'
        'interval = "billing_cycle.interval"\n'
    )
    files = {"accounts.csv": "Account ID\nA1\nA2\nA3\n", "subs.csv": subs}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    arr = dataset.tables["subscriptions"].set_index("account_id")["arr"]
    assert arr.to_dict() == {"A1": 12000.0, "A2": 12000.0, "A3": 12000.0}
    (note,) = [p for p in dataset.report.infos if "read as interval_count" in p.message]
    assert note.message.startswith('"billing_cycle.frequency" read as interval_count')
    assert not [p for p in dataset.report.warnings if "not mapped" in p.message]
    # Not whole counts ("3 months"): a warning, and prices read once per interval.
    words = {**files, "subs.csv": subs.replace("month,3,", "month,3 months,")}
    dataset = loading.load_tables(write_project(tmp_path / "words", words, config))
    arr = dataset.tables["subscriptions"].set_index("account_id")["arr"]
    assert arr.to_dict() == {"A1": 12000.0, "A2": 36000.0, "A3": 12000.0}
    (warning,) = [p for p in dataset.report.warnings if "intervals" in p.message]
    assert warning.line() == (
        'subs.csv, column "billing_cycle.frequency": "billing_cycle.frequency" looks like how '
        "many intervals one billing period spans (3 with interval month bills every quarter), "
        "but it is not mapped: every price is read as billed once per interval; fix: add "
        'interval_count = "billing_cycle.frequency" under [tables.subscriptions.columns]'
    )
    mapped = config + 'interval_count = "billing_cycle.frequency"\n'
    dataset = loading.load_tables(write_project(tmp_path / "mapped", files, mapped))
    arr = dataset.tables["subscriptions"].set_index("account_id")["arr"]
    assert arr.to_dict() == {"A1": 12000.0, "A2": 12000.0, "A3": 12000.0}
    assert not [p for p in dataset.report.warnings if "intervals" in p.message]
    assert "interval_count" not in dataset.tables["subscriptions"]
    bad = {**files, "subs.csv": subs.replace("month,3,", "month,0,")}
    (error,) = validation.validate(write_project(tmp_path / "bad", bad, mapped)).errors
    assert error.message == "1 rows have an interval_count that is not a positive number"
    assert error.rows == [3]


def test_a_model_with_price_and_interval_columns_needs_no_mapping(tmp_path):
    # A dbt model or query whose columns carry the canonical names: price per interval is
    # read as such, unless an arr or mrr column is there too.
    subs = (
        "account_id,start_date,price,interval,interval_count\n"
        "A1,2024-01-01,100,month,1\nA2,2024-01-01,600,month,6\n"
    )
    config = '[tables.accounts]\npath = "accounts.csv"\n[tables.subscriptions]\npath = "subs.csv"\n'
    files = {"accounts.csv": "account_id\nA1\nA2\n", "subs.csv": subs}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    assert dataset.tables["subscriptions"]["arr"].tolist() == [1200.0, 1200.0]
    with_arr = (
        subs.replace("interval_count\n", "interval_count,arr\n")
        .replace(",1\n", ",1,50\n")
        .replace(",6\n", ",6,70\n")
    )
    files["subs.csv"] = with_arr
    dataset = loading.load_tables(write_project(tmp_path / "arr", files, config))
    assert dataset.tables["subscriptions"]["arr"].tolist() == [50.0, 70.0]


def test_a_fix_worded_as_its_own_order_is_not_prefixed_again():
    from icp_research.data.loading import Problem

    told = Problem("error", "accounts", "a.csv", "2 values are not numbers", "fix those cells")
    plain = Problem("error", "accounts", "a.csv", "2 values are not numbers", "blank those cells")
    assert told.line() == "a.csv: 2 values are not numbers; fix those cells"
    assert plain.line() == "a.csv: 2 values are not numbers; fix: blank those cells"


def test_a_currency_column_sets_the_reports_symbol_and_a_mix_is_a_warning(tmp_path):
    deals = (
        "Deal ID,Account ID,Stage,Created,Value,Deal - Currency\n"
        "D1,A1,won,2024-01-05,100,EUR\nD2,A1,lost,2024-01-06,200,EUR\n"
        "D3,A1,won,2024-01-07,300,usd\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.opportunities]\npath = "deals.csv"\ndrop = ["Deal - Currency"]\n'
        "[tables.opportunities.columns]\n"
        'opportunity_id = "Deal ID"\naccount_id = "Account ID"\nstage = "Stage"\n'
        'created_at = "Created"\namount = "Value"\n'
    )
    files = {"accounts.csv": "Account ID\nA1\n", "deals.csv": deals}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    # Sums over euros and dollars are in neither: the generic currency sign, not "€".
    assert dataset.report.currencies == {"€": 2, "$": 1} and dataset.currency == "¤"
    # Dropped or not, a column of currencies beside the amounts is named: they are not converted.
    (mixed,) = [p for p in dataset.report.warnings if "currencies" in p.message]
    assert mixed.message.startswith(
        'amounts are in 2 currencies by the column "Deal - Currency" (EUR 2, USD 1 rows)'
    )
    assert mixed.rows == [4] and mixed.column == "Deal - Currency"
    # One currency: no warning, and the reports write it.
    one = write_project(
        tmp_path / "one", {**files, "deals.csv": deals.replace("usd", "EUR")}, config
    )
    dataset = loading.load_tables(one)
    assert dataset.currency == "€" and not [
        p for p in dataset.report.warnings if "currenc" in p.message
    ]


def test_unix_timestamps_are_a_date_format_and_the_error_names_it(tmp_path):
    subs = "Customer,Created,Cancelled,MRR\nA1,1700000000,1717200000,10\nA2,1704067200,,20\n"
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.subscriptions]\npath = "subs.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "Customer"\nstart_date = "Created"\nend_date = "Cancelled"\nmrr = "MRR"\n'
    )
    files = {"accounts.csv": "Account ID\nA1\nA2\n", "subs.csv": subs}
    report = validation.validate(write_project(tmp_path, files, config))
    fixes = {p.column: p.fix for p in report.errors if "are not dates" in p.message}
    assert fixes["Created -> start_date"] == (
        'these are seconds since 1970 (Unix timestamps): declare date_format = "unix" under '
        "[tables.subscriptions]"
    )
    unix = config.replace('path = "subs.csv"\n', 'path = "subs.csv"\ndate_format = "unix"\n')
    dataset = loading.load_tables(write_project(tmp_path / "unix", files, unix))
    subs_table = dataset.tables["subscriptions"]
    assert subs_table["start_date"].dt.strftime("%Y-%m-%d").tolist() == ["2023-11-14", "2024-01-01"]
    assert subs_table["end_date"].iloc[0] == pd.Timestamp("2024-06-01")
    millis = files["subs.csv"].replace("1700000000", "1700000000000")
    millis = millis.replace("1704067200", "1704067200000").replace("1717200000", "1717200000000")
    report = validation.validate(
        write_project(tmp_path / "ms", {**files, "subs.csv": millis}, config)
    )
    assert any(
        'date_format = "unix_ms"' in p.fix for p in report.errors if "not dates" in p.message
    )


def test_deleted_deals_are_dropped_on_the_users_word(tmp_path):
    deals = (
        "Deal ID,Account ID,Status,Created\n"
        "D1,A1,won,2024-01-05\nD2,A1,deleted,2024-01-06\nD3,A1,lost,2024-01-07\n"
        "D4,A1,open,2024-01-08\nD5,A1,deleted,2024-01-09\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Deal ID"\naccount_id = "Account ID"\nstage = "Status"\n'
        'created_at = "Created"\n'
    )
    files = {"accounts.csv": "Account ID\nA1\n", "deals.csv": deals}
    (error,) = validation.validate(write_project(tmp_path, files, config)).errors
    assert error.fix == (
        'add them under [tables.opportunities.values.stage], e.g. "deleted" = "drop" (those '
        "deals are left out)"
    )
    dropping = config + '[tables.opportunities.values.stage]\n"deleted" = "drop"\n'
    dataset = loading.load_tables(write_project(tmp_path / "drop", files, dropping))
    deals_table = dataset.tables["opportunities"]
    assert deals_table["opportunity_id"].tolist() == ["D1", "D3", "D4"]
    assert deals_table["stage"].tolist() == ["won", "lost", "open"]
    (note,) = [p for p in dataset.report.infos if "left out" in p.message]
    assert note.message.startswith('2 deals left out: their stage is "deleted"') and note.rows == [
        3,
        6,
    ]


def test_a_column_from_the_first_filled_of_several(tmp_path):
    deals = (
        "Deal ID,Account ID,Status,Created,Won time,Lost time\n"
        "D1,A1,won,2024-01-05,2024-02-01,\n"
        "D2,A1,lost,2024-01-06,,2024-03-01\n"
        "D3,A1,open,2024-01-08,,\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Deal ID"\naccount_id = "Account ID"\nstage = "Status"\n'
        'created_at = "Created"\nclosed_at = ["Won time", "Lost time"]\n'
    )
    files = {"accounts.csv": "Account ID\nA1\n", "deals.csv": deals}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    closed = dataset.tables["opportunities"]["closed_at"]
    assert closed.dt.strftime("%Y-%m-%d").fillna("").tolist() == ["2024-02-01", "2024-03-01", ""]
    # Neither part is reported as a column not used.
    assert not [p for p in dataset.report.warnings if "not used" in p.message]
    typo = config.replace('"Lost time"]', '"Lost tme"]')
    (error,) = validation.validate(write_project(tmp_path / "typo", files, typo)).errors
    assert error.message == 'mapped column "Lost tme" (for closed_at) is not in the file'


def test_usage_of_a_billing_customer_never_linked_to_the_crm_says_so(tmp_path):
    subs = "Sub,Customer,Start,MRR\nS1,A1,2024-01-01,10\nS2,,2024-01-01,10\n"
    usage = "Sub,Day,Metric\nS1,2024-02-01,logins\nS2,2024-02-01,logins\nS9,2024-02-01,logins\n"
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.subscriptions]\npath = "subs.csv"\n[tables.subscriptions.columns]\n'
        'subscription_id = "Sub"\naccount_id = "Customer"\nstart_date = "Start"\nmrr = "MRR"\n'
        '[tables.usage]\npath = "usage.csv"\naccount_id_from = "subscriptions.subscription_id"\n'
        '[tables.usage.columns]\nsubscription_id = "Sub"\ndate = "Day"\nmetric = "Metric"\n'
        "value = { value = 1 }\n"
    )
    files = {"accounts.csv": "Account ID\nA1\n", "subs.csv": subs, "usage.csv": usage}
    report = validation.validate(write_project(tmp_path, files, config))
    lines = sorted((p.message, p.rows) for p in report.warnings if p.table == "usage")
    assert lines == [
        (
            '1 row has a subscription_id that is not in subscriptions (e.g. "S9"), so no '
            "account: left out of every analysis",
            [4],
        ),
        (
            '1 row has a subscription_id whose subscriptions rows have no account_id (e.g. "S2"), '
            "so no account: left out of every analysis",
            [3],
        ),
    ]


def test_web_identifiers_are_not_traits(tmp_path):
    accounts = (
        "Account ID,Web domain,Website visits,LinkedIn URL,Domain expertise\n"
        "A1,a.com,10,li/a,ml\nA2,b.com,20,li/b,ml\nA3,a.com,30,li/c,bio\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
    )
    dataset = loading.load_tables(write_project(tmp_path, {"accounts.csv": accounts}, config))
    spec = dataset.attributes
    assert spec.excluded["web_domain"] == "a website, domain or link, not a trait"
    # A LinkedIn link is personal data: dropped as the file is read.
    assert "linkedin_url" not in dataset.tables["accounts"]
    assert "website_visits" in spec.numeric and "domain_expertise" in spec.categorical


def test_the_first_deals_lead_source_becomes_an_account_attribute(tmp_path):
    # Salesforce's Opportunity.LeadSource, HubSpot's deal source: how the account came to us,
    # known before the sale. Mapped only on the deals, it was loaded and never tested.
    deals = (
        "opportunity_id,account_id,stage,created_at,closed_at,source\n"
        "O1,A1,won,2024-02-01,2024-03-01,Inbound\n"
        "O2,A1,won,2024-01-01,2024-03-01,Partner\n"  # A1's first deal
        "O3,A2,lost,2024-05-01,2024-06-01,Event\n"
        "O4,A2,lost,2024-05-01,2024-06-02,Outbound\n"  # same day: the export's order decides
        "O5,A3,open,2024-05-01,,\n"
    )
    files = {"accounts.csv": "account_id,industry\nA1,X\nA2,Y\nA3,Z\nA4,Z\n", "deals.csv": deals}
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.opportunities]\npath = "deals.csv"\n'
    )
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    accounts = dataset.tables["accounts"].set_index("account_id")
    assert accounts["lead_source"].fillna("-").tolist() == ["Partner", "Event", "-", "-"]
    assert dataset.attributes.categorical == ["industry", "lead_source"]
    (note,) = [p.message for p in dataset.report.infos if "lead_source" in p.message]
    assert note.endswith("(2 of 4 accounts have one)")
    # Beside the accounts' own referral_source, a deal channel that says something else (a
    # partner pipeline) is kept too: mapped and silently ignored, it was never tested.
    files["accounts.csv"] = "account_id,referral_source\nA1,Referral\nA2,Web\nA3,Web\nA4,Web\n"
    dataset = loading.load_tables(write_project(tmp_path / "own", files, config))
    assert dataset.tables["accounts"]["lead_source"].fillna("-").tolist() == [
        "Partner",
        "Event",
        "-",
        "-",
    ]
    # One that says what referral_source says is not kept twice, with a note.
    files["accounts.csv"] = "account_id,referral_source\nA1,partner\nA2,Event\nA3,Web\nA4,Web\n"
    dataset = loading.load_tables(write_project(tmp_path / "same", files, config))
    assert "lead_source" not in dataset.tables["accounts"]
    (note,) = [p.message for p in dataset.report.infos if "not kept apart" in p.message]
    assert note.endswith("(100% of 2 accounts with both)")
    # Accounts with their own lead_source keep only theirs.
    files["accounts.csv"] = "account_id,lead_source\nA1,Referral\nA2,Web\nA3,Web\nA4,Web\n"
    dataset = loading.load_tables(write_project(tmp_path / "own2", files, config))
    assert dataset.tables["accounts"]["lead_source"].tolist() == ["Referral", "Web", "Web", "Web"]
    assert any("is not used" in p.message for p in dataset.report.infos)


def test_a_billing_status_column_is_read_for_what_it_means(tmp_path):
    # Stripe / Chargebee / Paddle statuses: a trial pays nothing yet; a cancelled subscription
    # with no end date would count as running (a warning); paused ones run (a note).
    subs = (
        "id,customer,status,mrr,created,ended\n"
        "S1,A1,active,100,2024-01-01,\n"
        "S2,A2,trialing,100,2024-06-01,\n"
        "S3,A3,Canceled,100,2024-01-01,2024-06-01\n"
        "S4,A4,canceled,100,2024-01-01,\n"
        "S5,A5,paused,100,2024-01-01,\n"
        "S6,A6,In Trial,0,2024-06-01,\n"
        "S7,A7,grace period,100,2024-01-01,\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.subscriptions]\npath = "subs.csv"\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "customer"\nstart_date = "created"\nend_date = "ended"\n'
    )
    accounts = "account_id\n" + "".join(f"A{i}\n" for i in range(1, 8))
    files = {"accounts.csv": accounts, "subs.csv": subs}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    table = dataset.tables["subscriptions"]
    assert table["account_id"].tolist() == ["A1", "A3", "A4", "A5", "A7"]  # no trials
    assert table["arr"].tolist() == [1200.0] * 5
    assert "status" not in table
    lines = [(p.level, p.message, p.rows) for p in dataset.report.problems if p.column == "status"]
    assert lines == [
        (
            "warning",
            '1 row has a status that is not a known billing status ("grace period"); they '
            "count as running",
            [8],
        ),
        (
            "info",
            "2 subscriptions are in trial by their status: they pay nothing yet, so they are "
            "left out (a trial makes no customer, and its end no churn)",
            [3, 7],
        ),
        (
            "warning",
            "1 subscriptions are cancelled by their status but have no end date: they count as "
            "running, so their churn is not seen",
            [5],
        ),
        (
            "info",
            "1 subscriptions are paused: they count as running at their ARR (not churned); "
            "their ARR is in the totals",
            [6],
        ),
    ]


def test_spellings_of_one_country_are_merged_and_codes_stay_codes(tmp_path):
    accounts = (
        "account_id,country\nA1,USA\nA2,United States\nA3,U.S.\nA4,Deutschland\nA5,Germany\n"
        "A6,UK\nA7,Narnia\nA8,\nA9,united states of america\n"
    )
    config = '[tables.accounts]\npath = "accounts.csv"\n'
    dataset = loading.load_tables(write_project(tmp_path, {"accounts.csv": accounts}, config))
    assert dataset.tables["accounts"]["country"].fillna("-").tolist() == [
        "United States", "United States", "United States", "Germany", "Germany",
        "United Kingdom", "Narnia", "-", "United States",
    ]  # fmt: skip
    (note,) = [p.message for p in dataset.report.infos if p.column == "country"]
    assert note == (
        'country: spellings of one country merged ("Deutschland" -> "Germany"; "UK" -> '
        '"United Kingdom"; "U.S.", "USA", "united states of america" -> "United States")'
    )
    # A column of ISO codes is left as codes (US is not turned into a name beside DE).
    codes = "account_id,country\nA1,US\nA2,DE\nA3,FR\nA4,BR\n"
    dataset = loading.load_tables(
        write_project(tmp_path / "codes", {"accounts.csv": codes}, config)
    )
    assert dataset.tables["accounts"]["country"].tolist() == ["US", "DE", "FR", "BR"]
    # Codes beside names of the same countries, as a hand-kept sheet has them, are spellings:
    # "US", "USA" and "United States" had stayed three levels because most cells were short.
    mixed = "account_id,country\nA1,US\nA2,USA\nA3,United States\nA4,UK\nA5,Germany\nA6,DE\nA7,BR\n"
    dataset = loading.load_tables(
        write_project(tmp_path / "mixed", {"accounts.csv": mixed}, config)
    )
    assert dataset.tables["accounts"]["country"].tolist() == [
        "United States", "United States", "United States", "United Kingdom", "Germany",
        "Germany", "BR",
    ]  # fmt: skip
    # A recode decides first.
    recode = config + '[tables.accounts.values.country]\n"UK" = "UK (all nations)"\n'
    dataset = loading.load_tables(
        write_project(tmp_path / "recode", {"accounts.csv": accounts}, recode)
    )
    assert dataset.tables["accounts"]["country"].iloc[5] == "UK (all nations)"


def test_deal_amounts_per_month_are_annualised(tmp_path):
    # Close exports value (in cents) with value_period: monthly, annual or one_time.
    deals = (
        "id,lead_id,status_type,value,value_period,date_created\n"
        "O1,A1,won,10000,monthly,2024-01-01\nO2,A1,lost,120000,annual,2024-01-01\n"
        "O3,A1,won,150000,one_time,2024-01-01\nO4,A1,lost,30000,Quarterly,2024-01-01\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.opportunities]\npath = "deals.csv"\n'
        "cents = true\n[tables.opportunities.columns]\n"
        'opportunity_id = "id"\naccount_id = "lead_id"\nstage = "status_type"\n'
        'amount = "value"\ninterval = "value_period"\ncreated_at = "date_created"\n'
    )
    files = {"accounts.csv": "account_id\nA1\n", "deals.csv": deals}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    table = dataset.tables["opportunities"]
    assert table["amount"].tolist() == [1200.0, 1200.0, 1500.0, 1200.0]
    assert "interval" not in table
    (note,) = [p.message for p in dataset.report.infos if "annualised" in p.message]
    assert note.startswith("2 deal amounts per month or quarter were annualised")
    bad = {**files, "deals.csv": deals.replace("Quarterly", "biweekly")}
    (error,) = validation.validate(write_project(tmp_path / "bad", bad, config)).errors
    assert error.message == '1 deals have an amount period that is not a known one ("biweekly")'


def test_a_dropped_column_is_not_read_under_its_canonical_name(tmp_path):
    subs = "customer,status,mrr,created\nA1,trialing,100,2024-01-01\nA2,active,100,2024-01-01\n"
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.subscriptions]\npath = "subs.csv"\n'
        "{drop}[tables.subscriptions.columns]\n"
        'account_id = "customer"\nstart_date = "created"\n'
    )
    files = {"accounts.csv": "account_id\nA1\nA2\n", "subs.csv": subs}
    read = loading.load_tables(write_project(tmp_path, files, config.format(drop="")))
    assert read.tables["subscriptions"]["account_id"].tolist() == ["A2"]  # the trial is out
    dropped = loading.load_tables(
        write_project(tmp_path / "drop", files, config.format(drop='drop = ["status"]\n'))
    )
    assert dropped.tables["subscriptions"]["account_id"].tolist() == ["A1", "A2"]


def test_a_parent_company_column_is_a_link_between_accounts_not_a_trait(tmp_path):
    # HubSpot's "Parent Company" holds the parent's record id, filled for subsidiaries: read
    # as a number it was binned into "parent company under inf", which became the ICP, carried
    # by three enterprise groups whose subsidiaries counted as independent accounts.
    rows = ["Record ID,Industry,Parent Company,Seats"]
    rows += ["5001,Aerospace,,10", "5002,Retail,,3"]
    rows += [f"{6000 + i},Aerospace,5001,{i + 1}" for i in range(5)]
    rows += [f"{7000 + i},Retail,5002,2" for i in range(3)]
    rows += [f"{8000 + i},Software,,4" for i in range(4)]
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Record ID"\nindustry = "Industry"\n'
    )
    report = validation.validate(
        write_project(tmp_path, {"accounts.csv": "\n".join(rows) + "\n"}, config)
    )
    dataset = loading.load_tables(
        write_project(tmp_path, {"accounts.csv": "\n".join(rows) + "\n"}, config)
    )
    spec = dataset.attributes
    assert spec.excluded["parent_company"] == "another account's id (a parent company), not a trait"
    assert "parent_company" not in spec.all
    assert "seats" in spec.numeric  # small numbers that are not ids of parents stay traits
    (warning,) = [p for p in report.warnings if p.column == "Parent Company"]
    assert warning.message.startswith(
        '8 accounts name another account here (2 parents, most often "5001" (5)'
    )
    assert (
        "the overview, pattern, lost-deal, predictor, ICP and health reports count each group "
        "as one independent unit" in warning.message
    )
    assert warning.message.endswith("the churn report counts accounts")
    assert warning.n_rows == 8 and warning.rows[:2] == [4, 5]  # rows as in the export


def test_duplicate_domains_are_a_warning(tmp_path):
    accounts = (
        "Record ID,Company Domain Name\n"
        "A1,acme.com\nA2,https://www.Acme.com/\nA3,beta.io\nA4,gamma.io\nA5,beta.io\nA6,\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Record ID"\n'
    )
    report = validation.validate(write_project(tmp_path, {"accounts.csv": accounts}, config))
    (warning,) = [p for p in report.warnings if p.column == "Company Domain Name"]
    assert warning.message.startswith(
        '2 domains are shared by 4 account records (e.g. "acme.com": accounts A1, A2; '
        '"beta.io": accounts A3, A5)'
    )
    assert warning.rows == [2, 3, 4, 6]
    # Workspaces signed up with an email provider's domain are not one company; a company's
    # many records are named three at a time.
    more = accounts + "".join(f"W{i},gmail.com\n" for i in range(40)) + "A7,acme.com\nA8,acme.com\n"
    report = validation.validate(write_project(tmp_path, {"accounts.csv": more}, config))
    (warning,) = [p for p in report.warnings if p.column == "Company Domain Name"]
    assert "gmail" not in warning.message
    assert warning.message.startswith(
        '2 domains are shared by 6 account records (e.g. "acme.com": accounts A1, A2, A7 and '
        '1 more; "beta.io": accounts A3, A5)'
    )


def test_a_wide_usage_export_mapped_as_long_is_an_error_naming_the_fix(tmp_path):
    # One column per metric; "metric" and "value" mapped to two of them: every weekly count of
    # active users would have become a metric of its own.
    usage = "Customer,Week,active_users,projects_created\n" + "".join(
        f"A1,2024-0{m}-01,{m + 2},{m * 3}\n" for m in range(1, 8)
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.usage]\npath = "usage.csv"\n[tables.usage.columns]\n'
        'account_id = "Customer"\ndate = "Week"\nmetric = "active_users"\n'
        'value = "projects_created"\n'
    )
    files = {"accounts.csv": "Account ID\nA1\n", "usage.csv": usage}
    report = validation.validate(write_project(tmp_path, files, config))
    (error,) = [p for p in report.errors if p.table == "usage"]
    assert error.message.startswith('the metric column holds numbers ("3", "4", "5")')
    assert "melt" in error.fix and error.column == "active_users"


def test_revenue_estimates_in_ranges_load_as_their_lower_ends(tmp_path):
    accounts = "Record ID,Estimated ARR range\nA1,$1M-$10M\nA2,$10M-$50M\nA3,$0-$1M\nA4,$1B+\nA5,\n"
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Record ID"\nannual_revenue = "Estimated ARR range"\n'
    )
    dataset = loading.load_tables(write_project(tmp_path, {"accounts.csv": accounts}, config))
    assert not dataset.report.errors
    revenue = dataset.tables["accounts"].set_index("account_id")["annual_revenue"]
    assert revenue.loc[["A1", "A2", "A3", "A4"]].tolist() == [1e6, 1e7, 0.0, 1e9]
    assert np.isnan(revenue.loc["A5"])
    (warning,) = [p for p in dataset.report.warnings if "ranges" in p.message]
    assert '"$1M-$10M" as 1,000,000' in warning.message


def test_billing_keyed_by_any_of_a_companys_domains_finds_its_account(tmp_path):
    # Attio keeps every domain of a company in one cell; Chargebee's custom field has one of
    # them, as the customer typed it.
    accounts = 'Record ID,Domains\nA1,"acme.com, acme.io"\nA2,bolt.dev\nA3,\n'
    subs = (
        "Domain,Start,MRR\nacme.io,2024-01-01,10\nhttps://www.Bolt.dev/,2024-02-01,20\n"
        "ACME.com,2024-03-01,5\nnobody.com,2024-01-01,7\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Record ID"\ndomain = "Domains"\n'
        '[tables.subscriptions]\npath = "subs.csv"\naccount_id_from = "accounts.domain"\n'
        '[tables.subscriptions.columns]\ndomain = "Domain"\nstart_date = "Start"\nmrr = "MRR"\n'
    )
    files = {"accounts.csv": accounts, "subs.csv": subs}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    assert not dataset.report.errors
    subs = dataset.tables["subscriptions"]
    assert sorted(subs["account_id"].tolist()) == ["A1", "A1", "A2"]
    (unknown,) = [p for p in dataset.report.warnings if "not in accounts" in p.message]
    assert '"nobody.com"' in unknown.message


def test_a_spanish_export_reads_as_one(tmp_path):
    """Holded invoices and a Spanish CRM: legal forms S.L. / S.A., invoice states Pagada /
    Pendiente / Anulada, "Sin decisión" as no decision, accented headers kept as words, and a
    dropped header that would clash with another once punctuation is set aside."""
    from icp_research.data.config import snake_name
    from icp_research.data.facts import _is_no_decision

    accounts = (
        "ID,Nombre,Facturación del plan\nE1,Transportes Ibérica S.L.,Mensual\nE2,Acme S.A.,Anual\n"
    )
    invoices = (
        "Cliente,Fecha,Concepto,Base,IVA %,IVA,Estado\n"
        "Transportes Iberica,2026-01-05,mensual,99,21,20.79,Pagada\n"
        "Transportes Iberica,2026-02-05,mensual,99,21,20.79,Pendiente\n"
        "ACME SA,2026-01-10,anual,990,21,207.9,Pagada\n"
        "ACME SA,2026-01-10,anual,990,21,207.9,Anulada\n"
    )
    config = (
        '[tables.accounts]\npath = "empresas.csv"\n[tables.accounts.columns]\n'
        'account_id = "ID"\nname = "Nombre"\n'
        '[tables.subscriptions]\npath = "facturas.csv"\ninvoices = true\n'
        'account_id_from = "accounts.name"\ndrop = ["IVA %"]\n'
        '[tables.subscriptions.columns]\nname = "Cliente"\nstart_date = "Fecha"\n'
        'price = "Base"\ninterval = "Concepto"\nstatus = "Estado"\n'
        '[tables.subscriptions.values.interval]\nmensual = "month"\nanual = "year"\n'
    )
    files = {"empresas.csv": accounts, "facturas.csv": invoices}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    assert not dataset.report.errors
    assert not [p for p in dataset.report.warnings if "not a known billing status" in p.message]
    subs = dataset.tables["subscriptions"].set_index("account_id")
    assert subs.loc["E1", "arr"] == 99 * 12 and subs.loc["E2", "arr"] == 990
    assert "facturación_del_plan" in dataset.tables["accounts"]
    assert snake_name("Facturación del plan") == "facturación_del_plan"
    reasons = pd.Series(["Sin decisión", "Precio", "Keine Entscheidung", "Competencia"])
    assert _is_no_decision(reasons).tolist() == [True, False, True, False]


def test_an_opportunity_history_export_is_one_deal_per_id_at_its_latest_stage(tmp_path):
    """Salesforce's Opportunity History: a row per stage change. Each deal is counted once, at
    its latest stage, created when its first row was; its stages make the stage funnel."""
    import icp_research as icp
    from icp_research.analyses.deals import stage_funnel

    rows = [
        ("O1", "A1", "Prospecting", "", "1/5/2025 9:00 AM"),
        ("O1", "A1", "Proposal", "", "2/1/2025 9:00 AM"),
        ("O1", "A1", "Closed Won", "3/1/2025", "3/1/2025 10:00 AM"),
        ("O2", "A2", "Prospecting", "", "6/1/2025 9:00 AM"),
        ("O2", "A2", "Closed Lost", "6/20/2025", "6/20/2025 9:00 AM"),
        ("O3", "A1", "Prospecting", "", "8/1/2025 9:00 AM"),
        ("O3", "A1", "Proposal", "", "8/3/2025 9:00 AM"),
    ]
    history = "Opportunity ID,Account ID,To Stage,Close Date,Last Modified Date\n" + "".join(
        ",".join(r) + "\n" for r in [rows[4], rows[0], rows[2], rows[1], *rows[3:4], *rows[5:]]
    )
    config = (
        '[project]\nas_of = "2025-12-31"\n'
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\n'
        '[tables.opportunities]\npath = "history.csv"\nhistory = true\n'
        'date_format = ["%m/%d/%Y %I:%M %p", "%m/%d/%Y"]\n'
        '[tables.opportunities.columns]\nopportunity_id = "Opportunity ID"\n'
        'account_id = "Account ID"\nstage = "To Stage"\nclosed_at = "Close Date"\n'
        'changed_at = "Last Modified Date"\n'
        '[tables.opportunities.values.stage]\n"Closed Won" = "won"\n"Closed Lost" = "lost"\n'
        'Prospecting = "open"\nProposal = "open"\n'
    )
    files = {"accounts.csv": "Account ID\nA1\nA2\n", "history.csv": history}
    path = write_project(tmp_path, files, config)
    dataset = loading.load_tables(path)
    assert not dataset.report.errors
    deals = dataset.tables["opportunities"].set_index("opportunity_id").sort_index()
    assert deals["stage"].tolist() == ["won", "lost", "open"]
    assert deals["created_at"].dt.strftime("%Y-%m-%d").tolist() == [
        "2025-01-05",
        "2025-06-01",
        "2025-08-01",
    ]
    assert "changed_at" not in deals
    (note,) = [p for p in dataset.report.infos if p.message.startswith("history = true")]
    assert note.message.startswith("history = true: 7 rows of stage changes became 3 deals")
    study = icp.open_study(path, reuse_snapshot=False)
    funnel = stage_funnel(study).summary
    # The order deals pass the stages, whatever the calendar dates of different deals.
    assert funnel["stage"].tolist()[:2] == ["Prospecting", "Proposal"]
    assert funnel.set_index("stage")["deals"].to_dict() == {
        "Prospecting": 3,
        "Proposal": 2,
        "Closed Won": 1,
        "Closed Lost": 1,
    }
    # Without history = true, the error names it.
    config = config.replace("history = true\n", "").replace("changed_at =", "created_at =")
    report = validation.validate(write_project(tmp_path / "plain", files, config))
    (error,) = report.errors
    assert "occur more than once" in error.message and "set history = true" in error.fix


def test_a_contract_term_of_the_subscriptions_is_named_as_billing_period(tmp_path):
    """Salesforce contracts: "Activated" ones run, "In Approval Process" ones have not started,
    and a contract term named under [attributes] contract (a subscriptions column) is an error
    that says how to have the churn report test it."""
    contracts = (
        "Account ID,Start,End,ACV,Status,Contract Term (months)\n"
        "A1,2024-01-01,,1200,Activated,12\n"
        "A2,2024-01-01,2024-12-31,2400,Expired,24\n"
        "A3,,,3600,In Approval Process,36\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.subscriptions]\npath = "contracts.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "Account ID"\nstart_date = "Start"\nend_date = "End"\narr = "ACV"\n'
        'status = "Status"\nbilling_period = "Contract Term (months)"\n'
    )
    files = {"accounts.csv": "account_id\nA1\nA2\nA3\n", "contracts.csv": contracts}
    dataset = loading.load_tables(write_project(tmp_path / "ok", files, config))
    subs = dataset.tables["subscriptions"]
    assert subs["account_id"].tolist() == ["A1", "A2"]
    assert subs["billing_period"].astype(str).tolist() == ["12", "24"]
    assert not [p for p in dataset.report.warnings if "not a known billing status" in p.message]
    wrong = config.replace("billing_period =", "plan =") + '[attributes]\ncontract = ["plan"]\n'
    with pytest.raises(DataError) as raised:
        loading.load_tables(write_project(tmp_path / "wrong", files, wrong))
    (line,) = [x for x in raised.value.problems if "[attributes] contract" in x]
    assert "'plan', a column of subscriptions, not of accounts" in line
    assert 'billing_period = "Contract Term (months)"' in line


def test_deals_keyed_by_the_accounts_names_say_how_to_look_them_up(tmp_path):
    """Pipedrive's deals name their organization: mapped as account_id, none matched, and the
    error said only "map the same key in both tables"."""
    files = {
        "accounts.csv": "Organization - ID,Organization - Name\n1,Acme Inc.\n2,Beta GmbH\n",
        "deals.csv": "Deal - ID,Deal - Organization,Deal - Status,Deal - Deal created\n"
        "D1,Acme Inc.,won,2024-01-01\nD2, beta gmbh ,lost,2024-02-01\n",
    }
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Organization - ID"\nname = "Organization - Name"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Deal - ID"\naccount_id = "Deal - Organization"\n'
        'stage = "Deal - Status"\ncreated_at = "Deal - Deal created"\n'
    )
    with pytest.raises(DataError) as raised:
        loading.load_tables(write_project(tmp_path, files, config))
    (line,) = [x for x in raised.value.problems if "none of the 2 account_id" in x]
    assert line.endswith(
        "fix: these are the accounts' names (100% of them match a name): set account_id_from = "
        '"accounts.name" under [tables.opportunities] and map name = "Deal - Organization" '
        "under [tables.opportunities.columns] instead of account_id"
    )


def test_a_pipeline_stage_mapped_as_stage_is_named_beside_the_column_that_says_won(tmp_path):
    """Pipedrive: "Deal - Stage" is the pipeline stage, "Deal - Status" says won / lost. Mapped
    to the first with every stage recoded to open, validation said OK and the reports had no
    win rate; the stage error listed 6 of its 7 values."""
    stages = ["Identified", "Qualified", "Contact Made", "Demo Scheduled", "Proposal Made",
              "Negotiations Started", "Negotiation"]  # fmt: skip
    rows = [
        f"D{i},A1,{stages[i % 7]},{['won', 'lost', 'open'][i % 3]},2024-01-{1 + i % 28:02d}"
        for i in range(21)
    ]
    files = {
        "accounts.csv": "account_id\nA1\n",
        "deals.csv": "Deal - ID,Org,Deal - Stage,Deal - Status,Created\n" + "\n".join(rows) + "\n",
    }
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Deal - ID"\naccount_id = "Org"\nstage = "Deal - Stage"\n'
        'created_at = "Created"\n'
    )
    with pytest.raises(DataError) as raised:
        loading.load_tables(write_project(tmp_path / "a", files, config))
    (line,) = [x for x in raised.value.problems if "stage values are not mapped" in x]
    assert all(f'"{stage}" (3 rows)' in line for stage in stages)
    recoded = (
        config
        + "[tables.opportunities.values.stage]\n"
        + "".join(f'"{stage}" = "open"\n' for stage in stages)
    )
    dataset = loading.load_tables(write_project(tmp_path / "b", files, recoded))
    (warning,) = [p for p in dataset.report.warnings if "no deal is won or lost" in p.message]
    assert '"Deal - Status" says won / lost' in warning.message
    assert warning.fix == 'map stage = "Deal - Status" under [tables.opportunities.columns]'


def test_dates_that_cannot_be_read_are_reported_once_not_again_as_missing(tmp_path):
    """Salesforce's "1/1/2022 7:01 AM" under date_format = "%m/%d/%Y": the error now names the
    pattern that reads them, and the cells are not also "missing" ("4,617 deals have no
    created_at ... fill the creation date", "rows have no start_date ... remove those rows":
    the cells were filled, and removing the rows would lose the data)."""
    files = {
        "accounts.csv": "account_id\nA1\nA2\n",
        "deals.csv": "id,account,stage,created\nD1,A1,won,1/1/2022 7:01 AM\n"
        "D2,A2,lost,12/13/2023 11:45 PM\nD3,A2,open,\n",
        "subs.csv": "account,start,arr\nA1,2022-01-05 00:00:00,100\nA2,,200\n",
    }
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "deals.csv"\ndate_format = "%m/%d/%Y"\n'
        "[tables.opportunities.columns]\n"
        'opportunity_id = "id"\naccount_id = "account"\nstage = "stage"\ncreated_at = "created"\n'
        '[tables.subscriptions]\npath = "subs.csv"\ndate_format = "%d/%m/%Y"\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "account"\nstart_date = "start"\narr = "arr"\n'
    )
    report = validation.validate(write_project(tmp_path, files, config))
    lines = report.lines()
    (deals,) = [x for x in lines if "created -> created_at" in x]
    assert "2 values are not dates" in deals
    assert 'declare date_format = ["%m/%d/%Y", "%m/%d/%Y %I:%M %p"]' in deals
    (subs,) = [x for x in lines if "start -> start_date" in x]
    assert 'date_format = ["%d/%m/%Y", "%Y-%m-%d %H:%M:%S"]' in subs
    # Only the blank cells are missing: one deal, one subscription.
    assert any("1 deals have no created_at" in x for x in lines)
    assert any("1 rows have no start_date" in x for x in lines)
    assert not any("2 deals have no created_at" in x or "3 deals" in x for x in lines)


def test_real_date_cells_beside_dates_typed_as_text_are_both_read():
    """A hand-kept sheet: Excel date cells and "01/10/2022" typed as text in one column, with
    date_format = "%d/%m/%Y" for the text: the date cells were written out as "2022-10-01
    00:00:00" and failed the format."""
    import datetime as dt

    from icp_research.data.cleaning import parse_dates

    cells = pd.Series(
        [dt.datetime(2022, 10, 1), "03/04/2025", None, "nope", dt.date(2024, 2, 29)],
        dtype=object,
    )
    values, bad = parse_dates(cells, "%d/%m/%Y")
    assert values.dt.strftime("%Y-%m-%d").fillna("").tolist() == [
        "2022-10-01",
        "2025-04-03",
        "",
        "",
        "2024-02-29",
    ]
    assert bad.tolist() == [False, False, False, True, False]


def test_labels_that_differ_only_in_case_spaces_or_punctuation_are_one_value(tmp_path):
    """A hand-kept list: "Healthcare", "healthcare", "Health care" were three industries, each
    too small to test, and the churn report proposed two exclude rules on pieces of one
    finding. Keys (Salesforce ids differ only in case) and labels with digits stay apart."""
    accounts = (
        "account_id,Industry,Segment,Legacy Ref\n"
        "A1,Healthcare,SMB,0015g00000ABCDE\nA2,Healthcare,smb,0015g00000abcde\n"
        "A3,healthcare,SMB,X1\nA4,Health care,Mid-Market,X2\nA5,Health-Care,Mid Market,X3\n"
        "A6,HealthTech,Tier 1,X4\nA7,Retail,tier 1,X5\nA8,Retail,Tier 2,X6\n"
    )
    deals = (
        "id,account,stage,created,reason\nD1,A1,lost,2024-01-01,Price\n"
        "D2,A2,lost,2024-01-02,price\nD3,A3,lost,2024-01-03,Price \nD4,A4,won,2024-01-04,\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "id"\naccount_id = "account"\nstage = "stage"\ncreated_at = "created"\n'
        'loss_reason = "reason"\n'
    )
    files = {"accounts.csv": accounts, "deals.csv": deals}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    table = dataset.tables["accounts"]
    assert table["industry"].tolist() == ["Healthcare"] * 5 + ["HealthTech", "Retail", "Retail"]
    segment = table["segment"].tolist()
    assert segment[:3] == ["SMB"] * 3 and segment[3] == segment[4] == "Mid Market"
    assert segment[5:7] == ["Tier 1", "tier 1"]  # a digit: kept as written
    assert table["legacy_ref"].tolist()[:2] == ["0015g00000ABCDE", "0015g00000abcde"]
    lost = dataset.tables["opportunities"]["loss_reason"].dropna()
    assert set(lost) == {"Price"}
    (note,) = [p for p in dataset.report.infos if p.column == "Industry"]
    assert note.message.startswith("industry: spellings of one value merged (")
    assert '"Health care" -> "Healthcare"' in note.message


def test_a_money_header_or_some_cells_name_the_currency_of_a_hand_kept_sheet(tmp_path):
    """ "MRR (£)" with plain numbers and a few "£1,250" text cells (an Excel sheet kept by
    hand): every page wrote dollars, "$4.5M ARR"."""
    sheet = pd.DataFrame(
        {
            "Customer": ["A1", "A2", "A3", "A4"],
            "Signed": pd.to_datetime(["2024-01-01"] * 4),
            "MRR (£)": [100, "£1,250", 300.5, None],
        }
    )
    sheet.to_excel(tmp_path / "customers.xlsx", index=False)
    config = write_project(
        tmp_path,
        {},
        '[tables.accounts]\npath = "customers.xlsx"\n[tables.accounts.columns]\n'
        'account_id = "Customer"\n'
        '[tables.subscriptions]\npath = "customers.xlsx"\n[tables.subscriptions.columns]\n'
        'account_id = "Customer"\nstart_date = "Signed"\nmrr = "MRR (£)"\n',
    )
    dataset = loading.load_tables(config)
    assert dataset.report.currencies == {"£": 3} and dataset.currency == "£"
    assert dataset.tables["subscriptions"]["arr"].tolist()[:3] == [1200.0, 15000.0, 3606.0]


def test_a_date_column_read_as_text_is_left_out_as_dates_not_as_an_id(tmp_path):
    """Salesforce's "Customer Since" (M/D/YYYY, filled for customers only) was left out as
    "595 distinct values (looks like a name or id)"."""
    days = pd.date_range("2022-01-01", periods=60, freq="7D")
    accounts = "account_id,Customer Since\n" + "".join(
        f"A{i},{d.month}/{d.day}/{d.year}\n" for i, d in enumerate(days)
    )
    dataset = loading.load_tables(
        write_project(
            tmp_path, {"accounts.csv": accounts}, '[tables.accounts]\npath = "accounts.csv"\n'
        )
    )
    assert dataset.attributes.excluded["customer_since"] == (
        "dates: when something happened, not a trait"
    )


def test_free_text_with_email_addresses_is_dropped_as_personal_data(tmp_path):
    """A founder's "Notes" ("Call with jane@acme.com re renewal") were kept in the run's data
    snapshot; text that carries people's email addresses is dropped like an Email column."""
    notes = ["Call with jane@acme.com re renewal", "", "Met Bob at the fair", "bob@beta.io asked"]
    accounts = "account_id,Notes,Industry\n" + "".join(
        f"A{i},{notes[i % 4]},SaaS\n" for i in range(40)
    )
    dataset = loading.load_tables(
        write_project(
            tmp_path, {"accounts.csv": accounts}, '[tables.accounts]\npath = "accounts.csv"\n'
        )
    )
    assert "notes" not in dataset.tables["accounts"] and "industry" in dataset.tables["accounts"]
    (note,) = [p for p in dataset.report.infos if "email addresses dropped" in p.message]
    assert '"Notes"' in note.message


def test_iso_date_times_beside_a_declared_pattern_are_named_and_read(tmp_path):
    """A Salesforce export with CloseDate as 04/25/2024 and CreatedDate as API date-times
    ("2024-04-25T17:26:12.000+0000"): the error suggested no format, and the deals whose
    dates could not be read were reported again as won / lost deals without closed_at."""
    deals = (
        "Id,AccountId,StageName,CloseDate,CreatedDate\n"
        "o1,a1,Closed Won,04/25/2024,2024-03-01T17:26:12.000+0000\n"
        "o2,a1,Closed Lost,05/02/2024,2024-03-05T09:00:00.000+0000\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "deals.csv"\ndate_format = "%m/%d/%Y"\n'
        '[tables.opportunities.columns]\nopportunity_id = "Id"\naccount_id = "AccountId"\n'
        'stage = "StageName"\nclosed_at = "CloseDate"\ncreated_at = "CreatedDate"\n'
        '[tables.opportunities.values.stage]\n"Closed Won" = "won"\n"Closed Lost" = "lost"\n'
    )
    files = {"accounts.csv": "account_id\na1\n", "deals.csv": deals}
    dataset = loading.load_dataset(write_project(tmp_path, files, config))
    errors = [p for p in dataset.report.errors if p.column.startswith("CreatedDate")]
    assert len(errors) == 1
    assert 'date_format = ["%m/%d/%Y", "ISO8601"]' in errors[0].fix
    assert not [p for p in dataset.report.warnings if "have no closed_at" in p.message]
    fixed = config.replace('date_format = "%m/%d/%Y"', 'date_format = ["%m/%d/%Y", "ISO8601"]')
    dataset = loading.load_tables(write_project(tmp_path, files, fixed))
    assert not dataset.report.errors
    deals = dataset.tables["opportunities"].set_index("opportunity_id")
    assert deals.loc["o1", "created_at"] == pd.Timestamp("2024-03-01")
    assert deals.loc["o2", "closed_at"] == pd.Timestamp("2024-05-02")


def test_numbers_that_cannot_be_read_are_not_reported_again_as_missing(tmp_path):
    """German amounts without decimal = ",": the error, and then "599 subscriptions have no
    ARR/MRR; they count as 0" for the same cells, which were filled. German billing statuses
    (aktiv, gekündigt, pausiert) mean what their English ones do."""
    subs = (
        "Vertrag;Firma;Beginn;Ende;Jahreswert;Status\n"
        "v1;a1;2024-01-01;;12.500,00 €;aktiv\n"
        "v2;a2;2024-01-01;2024-09-30;9.000,00 €;gekündigt\n"
        "v3;a3;2024-02-01;;;pausiert\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.subscriptions]\npath = "subs.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "Firma"\nstart_date = "Beginn"\nend_date = "Ende"\narr = "Jahreswert"\n'
        'status = "Status"\n'
    )
    files = {"accounts.csv": "account_id\na1\na2\na3\n", "subs.csv": subs}
    dataset = loading.load_dataset(write_project(tmp_path, files, config))
    assert [p.column for p in dataset.report.errors] == ["Jahreswert -> arr"]
    missing = [p for p in dataset.report.warnings if "have no ARR/MRR" in p.message]
    assert [p.message.split(" ")[0] for p in missing] == ["1"]  # v3's empty cell only
    fixed = config.replace(
        "[tables.subscriptions.columns]", 'decimal = ","\n[tables.subscriptions.columns]'
    )
    dataset = loading.load_tables(write_project(tmp_path, files, fixed))
    assert not dataset.report.errors
    assert not [p for p in dataset.report.warnings if "not a known billing status" in p.message]
    assert any(
        "1 subscriptions are paused" in p.message or "subscription is paused" in p.message
        for p in dataset.report.problems
    ), [p.message for p in dataset.report.problems]
    subs = dataset.tables["subscriptions"].set_index("account_id")
    assert subs.loc["a1", "arr"] == 12500.0


@pytest.mark.parametrize(
    ("encoding", "text", "language"),
    [
        (
            "cp932",
            "会社ID,業種\nC1,製造業\nC2,ソフトウェア\nC3,小売\nC4,物流サービス\n",
            "Japanese",
        ),
        ("euc_kr", "회사,업종\nC1,제조업\nC2,소프트웨어\nC3,소매업\nC4,물류\n", "Korean"),
        ("gbk", "公司,行业\nC1,制造业\nC2,软件开发\nC3,零售业\nC4,物流运输\n", "Chinese"),
        ("cp1251", "Компания,Отрасль\nC1,Производство\nC2,Розничная торговля\n", "Cyrillic"),
    ],
)
def test_an_export_in_another_script_is_named_by_its_encoding(tmp_path, encoding, text, language):
    """A Japanese CRM's Shift-JIS export was told to add encoding = "mac_roman" (its bytes
    decode as Mac-Roman, into nonsense); the fix names the encoding that reads its script."""
    from icp_research.data.encodings import script_encoding

    raw = text.encode(encoding)
    found = script_encoding(raw)
    assert found is not None and found[0] == encoding and found[1].startswith(language)
    (tmp_path / "accounts.csv").write_bytes(raw)
    config = '[tables.accounts]\npath = "accounts.csv"\n'
    dataset = loading.load_dataset(write_project(tmp_path, {}, config))
    (error,) = dataset.report.errors
    assert error.fix.startswith(f'add encoding = "{encoding}" under [tables.accounts]')
    key = text.split(",")[0]
    fixed = config + f'encoding = "{encoding}"\n[tables.accounts.columns]\naccount_id = "{key}"\n'
    dataset = loading.load_dataset(write_project(tmp_path, {}, fixed))
    assert not dataset.report.errors
    assert text.splitlines()[2].split(",")[1] in set(dataset.tables["accounts"].iloc[:, -1])


@pytest.mark.parametrize("encoding", ["cp1252", "mac_roman", "latin-1"])
def test_western_text_is_not_taken_for_another_script(encoding):
    from icp_research.data.encodings import script_encoding

    text = "name,city\nJosé Müller,São Paulo\nFrançois Lefèvre,Zürich\nBjörk Jónsdóttir,Reykjavík\n"
    assert script_encoding((text * 5).encode(encoding)) is None


def test_a_contracts_export_mapped_as_churn_events_for_its_reasons(tmp_path):
    """A German contracts export with a Kündigungsgrund column: mapped as churn_events too (the
    only way to its reasons), its running contracts (no end date) were "480 rows have no
    churned_at (a required value)", an error with no way on."""
    contracts = (
        "Vertrag,Firma,Beginn,Ende,Jahreswert,Kündigungsgrund\n"
        "v1,a1,2024-01-01,,1200,\n"
        "v2,a2,2024-01-01,2024-09-30,900,Preis\n"
        "v3,a3,2024-02-01,,500,\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.subscriptions]\npath = "contracts.csv"\ndrop = ["Vertrag", "Kündigungsgrund"]\n'
        "[tables.subscriptions.columns]\n"
        'account_id = "Firma"\nstart_date = "Beginn"\nend_date = "Ende"\narr = "Jahreswert"\n'
        '[tables.churn_events]\npath = "contracts.csv"\n'
        'drop = ["Vertrag", "Beginn", "Jahreswert"]\n[tables.churn_events.columns]\n'
        'account_id = "Firma"\nchurned_at = "Ende"\nreason = "Kündigungsgrund"\n'
    )
    files = {"accounts.csv": "account_id\na1\na2\na3\n", "contracts.csv": contracts}
    dataset = loading.load_dataset(write_project(tmp_path, files, config))
    assert not dataset.report.errors
    (warning,) = [p for p in dataset.report.warnings if "have no churned_at" in p.message]
    assert warning.message.startswith("2 rows have no churned_at: they record no churn")
    events = dataset.tables["churn_events"]
    assert events["account_id"].tolist() == ["a2"] and events["reason"].tolist() == ["Preis"]


def _day_first_accounts() -> str:
    rows = ["account_id,created_at"]
    days = [(3, 5), (22, 5), (7, 11), (30, 1), (12, 12), (1, 2), (15, 8), (5, 10)]
    rows += [f"a{i},{d:02d}/{m:02d}/2025" for i, (d, m) in enumerate(days)]
    return "\n".join(rows) + "\n"


def test_day_first_dates_under_a_month_first_format_get_one_pattern_not_a_list(tmp_path):
    """A Salesforce preset's "%m/%d/%Y" on a European export: the fix had been the list
    ["%m/%d/%Y", "%d/%m/%Y"], which then read every date with a day up to 12 month-first
    (03/05 as March 5) without a word. One pattern reads every date: the fix says that one."""
    config = '[tables.accounts]\npath = "accounts.csv"\ndate_format = "%m/%d/%Y"\n'
    dataset = loading.load_dataset(
        write_project(tmp_path, {"accounts.csv": _day_first_accounts()}, config)
    )
    (error,) = dataset.report.errors
    assert error.rows == [3, 5, 8]  # 22/05, 30/01, 15/08
    assert 'declare date_format = "%d/%m/%Y" under [tables.accounts]' in error.fix
    assert '"03/05/2025" would be read by the first pattern' in error.fix
    assert "[" not in error.fix.split("declare date_format = ")[1].split(" under")[0]


def test_a_list_of_both_date_orders_warns_when_the_column_is_written_the_other_way(tmp_path):
    listed = '[tables.accounts]\npath = "accounts.csv"\ndate_format = ["%m/%d/%Y", "%d/%m/%Y"]\n'
    dataset = loading.load_tables(
        write_project(tmp_path, {"accounts.csv": _day_first_accounts()}, listed)
    )
    assert not dataset.report.errors
    (warning,) = [w for w in dataset.report.warnings if "read both ways" in w.message]
    # 03/05, 07/11, 01/02 and 05/10 were read month-first; 12/12 reads the same both ways.
    assert warning.message.startswith('4 dates that read both ways ("03/05/2025")')
    assert '3 dates of the column fit only "%d/%m/%Y"' in warning.message
    assert warning.rows == [2, 4, 7, 9]
    assert 'declare date_format = "%d/%m/%Y"' in warning.fix
    read = dataset.tables["accounts"].set_index("account_id")["created_at"]
    assert read["a0"] == pd.Timestamp("2025-03-05")  # what the list does, hence the warning
    # A column with dates that fit only the first pattern is mixed: nothing to say.
    mixed = _day_first_accounts() + "a9,05/22/2025\n"
    dataset = loading.load_tables(write_project(tmp_path, {"accounts.csv": mixed}, listed))
    assert not [w for w in dataset.report.warnings if "read both ways" in w.message]
    # A day-first pattern declared alone reads them all, without a warning.
    alone = listed.replace('["%m/%d/%Y", "%d/%m/%Y"]', '"%d/%m/%Y"')
    dataset = loading.load_tables(
        write_project(tmp_path, {"accounts.csv": _day_first_accounts()}, alone)
    )
    assert not dataset.report.problems
    assert dataset.tables["accounts"].set_index("account_id").loc["a0", "created_at"] == (
        pd.Timestamp("2025-05-03")
    )


def test_a_usage_event_log_without_a_value_counts_each_event_once(tmp_path):
    """A product event log (workspace, event, timestamp, user) had no way in: "required column
    value is not mapped", and a constant value = 1 had to be guessed."""
    files = {
        "accounts.csv": "account_id\nA1\nA2\n",
        "events.csv": "workspace_id,event,ts,user_id\n"
        "A1,login,2025-01-02T10:00:00Z,u1\nA1,login,2025-01-02T11:00:00Z,u2\n"
        "A2,export,2025-01-03T10:00:00Z,u3\n",
    }
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.usage]\npath = "events.csv"\n'
        '[tables.usage.columns]\naccount_id = "workspace_id"\nmetric = "event"\ndate = "ts"\n'
    )
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    assert not dataset.report.errors
    usage = dataset.tables["usage"]
    assert usage["value"].tolist() == [1.0, 1.0, 1.0]
    assert usage["user_id"].tolist() == ["u1", "u2", "u3"]
    (note,) = [p for p in dataset.report.infos if "no value column" in p.message]
    assert "each row is read as one event" in note.message
    from icp_research.data.facts import usage_signals

    signals = usage_signals(usage, "2025-01-05", pd.Index(["A1", "A2"]))
    assert signals.loc["A1", "usage_login"] == 2.0  # two events on one active day


def _account_groups_of(tmp_path, rows: list, config: str):
    """The dataset of an accounts file of ``rows``, and its parent column and groups."""
    from icp_research.data.loading import account_groups

    path = write_project(tmp_path, {"accounts.csv": "\n".join(rows) + "\n"}, config)
    dataset = loading.load_tables(path)
    return (dataset, *account_groups(dataset.tables["accounts"]))


def test_a_parent_column_naming_a_few_deleted_parents_still_links_the_others(tmp_path):
    """A Fivetran sync keeps a deleted parent's id on its subsidiaries: 3 of 85 parent_id
    values named no account, so the column was taken for a plain id and no account was
    grouped, without a word."""
    from icp_research.data.loading import account_groups

    rows = ["Id,Industry,parent_id"]
    rows += ["P1,Retail,", "P2,Retail,"]
    rows += [f"S{i},Retail,P1" for i in range(5)]
    rows += [f"T{i},Retail,P2" for i in range(3)]
    rows += ["U1,Retail,DELETED1", "U2,Retail,DELETED2"]
    rows += [f"X{i},Software," for i in range(4)]
    rows += ["U3,Retail,DELETED1"]  # with U1, two subsidiaries of one deleted parent
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Id"\nindustry = "Industry"\n'
    )
    dataset, column, head = _account_groups_of(tmp_path, rows, config)
    assert column == "parent_id"
    assert head["S0"] == "P1" and head["T2"] == "P2" and "U2" not in head
    assert head["U1"] == head["U3"] == "DELETED1"
    assert "parent_id" not in dataset.attributes.all
    (linked,) = [p for p in dataset.report.warnings if p.message.startswith("8 accounts name")]
    (stray,) = [p for p in dataset.report.warnings if "not in the accounts table" in p.message]
    assert stray.message.startswith(
        '3 accounts name a parent that is not in the accounts table ("DELETED1", "DELETED2"; '
        "a deleted record"
    )
    assert stray.message.endswith("those naming the same one are one group (2 groups)")
    assert stray.rows == [12, 13, 18]
    # A column that is not a parent's, with a few ids by chance, links nothing.
    rows[0] = "Id,Industry,code"
    rows[1:3] = ["P1,Retail,Q", "P2,Retail,R"]
    path = write_project(tmp_path / "other", {"accounts.csv": "\n".join(rows) + "\n"}, config)
    assert account_groups(loading.load_tables(path).tables["accounts"]) == ("", {})


def test_odoo_lost_deals_are_read_from_the_archive_flag(tmp_path):
    """Odoo archives the opportunities it loses (Active = False) and leaves their stage at
    New, Qualified or Proposition: a first user's 2,914 lost deals read as open, and validate
    said "every closed deal in this export is won (no lost deals recorded)" with the fix
    "export lost deals too". The flag is named in a warning, and lost_when reads it."""
    deals = (
        "ID,Customer,Stage,Active,Lost Reason,Created on,Closed Date\n"
        "1,A1,Won,True,,2025-01-02,2025-02-01\n"
        "2,A1,Qualified,False,Too expensive,2025-01-05,2025-03-01\n"
        "3,A2,Proposition,False,,2025-01-07,2025-03-02\n"
        "4,A2,New,True,,2025-06-01,\n"
        "5,A2,Won,False,,2025-01-03,2025-01-20\n"
    )
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\naccount_id = "id"\n'
        '[tables.opportunities]\npath = "crm_lead.csv"\n{extra}[tables.opportunities.columns]\n'
        'opportunity_id = "ID"\naccount_id = "Customer"\nstage = "Stage"\n'
        'loss_reason = "Lost Reason"\ncreated_at = "Created on"\nclosed_at = "Closed Date"\n'
        '[tables.opportunities.values.stage]\nNew = "open"\nQualified = "open"\n'
        'Proposition = "open"\nWon = "won"\n'
    )
    files = {"accounts.csv": "id\nA1\nA2\n", "crm_lead.csv": deals}
    dataset = loading.load_tables(write_project(tmp_path, files, config.format(extra="")))
    assert dataset.tables["opportunities"]["stage"].tolist() == [
        "won",
        "open",
        "open",
        "open",
        "won",
    ]
    (hint,) = [p for p in dataset.report.warnings if "archives the deals it loses" in p.message]
    assert hint.message.startswith(
        'no deal is lost by the stage column, but "Active" is "False" on 2 deals it calls open'
    )
    assert hint.fix.startswith(
        'if archived deals were lost, set lost_when = { "Active" = "False" }'
    )
    extra = 'lost_when = { "Active" = false }\n'
    dataset = loading.load_tables(write_project(tmp_path / "b", files, config.format(extra=extra)))
    assert not dataset.report.errors
    assert dataset.tables["opportunities"]["stage"].tolist() == [
        "won",
        "lost",
        "lost",
        "open",
        "won",
    ]
    (note,) = [p for p in dataset.report.infos if "(lost_when)" in p.message]
    assert note.message == (
        '2 deals read as lost because "Active" is "false" (lost_when); their stage said open; '
        "1 won deals match it too and stay won"
    )
    assert not [p for p in dataset.report.warnings if "not mapped" in p.message]
    # A column lost_when names must be in the export.
    wrong = config.format(extra='lost_when = { "Archived" = "True" }\n')
    with pytest.raises(DataError, match='lost_when names the column "Archived", which is not in'):
        loading.load_tables(write_project(tmp_path / "c", files, wrong))


def test_most_open_deals_closed_long_ago_are_named(tmp_path):
    """Lost deals a CRM marks elsewhere read as open, in no win rate, without a word: 2,900
    "open" deals of a first user's export had close dates months or years back."""
    rows = ["id,account,stage,created,closed"]
    rows += [f"W{i},A1,won,2024-01-01,2025-0{1 + i % 9}-15" for i in range(10)]
    rows += [f"O{i},A1,open,2023-01-01,2024-0{1 + i % 9}-10" for i in range(24)]
    rows += [f"N{i},A1,open,2025-08-01,2025-10-30" for i in range(6)]
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\naccount_id = "id"\n'
        '[tables.opportunities]\npath = "deals.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "id"\naccount_id = "account"\nstage = "stage"\n'
        'created_at = "created"\nclosed_at = "closed"\n'
    )
    files = {"accounts.csv": "id\nA1\n", "deals.csv": "\n".join(rows) + "\n"}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    (stale,) = [p for p in dataset.report.warnings if "open deals with a close date" in p.message]
    assert stale.message.startswith(
        "24 of 30 open deals with a close date closed more than 180 days before the latest won "
        "or lost deal (2025-09-15)"
    )
    assert len(stale.rows) == 24
    # A pipeline whose open deals close ahead says nothing.
    ahead = [r.replace(",2024-0", ",2025-0") for r in rows]
    files["deals.csv"] = "\n".join(ahead) + "\n"
    dataset = loading.load_tables(write_project(tmp_path / "b", files, config))
    assert not [p for p in dataset.report.warnings if "open deals with a close date" in p.message]


def test_a_money_column_whose_header_says_cents_is_read_in_cents(tmp_path):
    """A Maxio export's "MRR (in cents)": without cents = true the ARR was 100x too high, with
    only a warning about the ratio to the deals. The header says it; cents = false overrides."""
    files = {
        "accounts.csv": "id\nA1\nA2\n",
        "subs.csv": "Customer,Activated At,MRR (in cents)\n"
        "A1,2025-01-01,125000\nA2,2025-02-01,9900\n",
    }
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\naccount_id = "id"\n'
        '[tables.subscriptions]\npath = "subs.csv"\n[tables.subscriptions.columns]\n'
        'account_id = "Customer"\nstart_date = "Activated At"\nmrr = "MRR (in cents)"\n'
        "{extra}"
    )
    dataset = loading.load_tables(write_project(tmp_path, files, config.format(extra="")))
    assert dataset.tables["subscriptions"]["arr"].tolist() == [15000.0, 1188.0]
    (note,) = [p for p in dataset.report.infos if "read in cents" in p.message]
    assert note.message.startswith("MRR (in cents): read in cents (divided by 100)")
    kept = config.format(extra="").replace('path = "subs.csv"', 'path = "subs.csv"\ncents = false')
    dataset = loading.load_tables(write_project(tmp_path / "kept", files, kept))
    assert dataset.tables["subscriptions"]["arr"].tolist() == [1500000.0, 118800.0]
    assert not [p for p in dataset.report.infos if "read in cents" in p.message]


def test_a_parent_column_naming_parents_by_name_links_them(tmp_path):
    """A Salesforce accounts report (or an Odoo export) writes "Parent Account" as the parent's
    name, not its id: no account was grouped, and a group's subsidiaries counted as
    independent customers."""
    from icp_research.data.loading import account_groups

    rows = ["Account ID,Account Name,Industry,Parent Account"]
    rows += ["001A,Acme Holdings,Retail,", "001B,Globex Corp,Retail,"]
    rows += [f"00S{i},Acme Store {i},Retail,acme  holdings" for i in range(5)]
    rows += [f"00T{i},Globex Unit {i},Retail,Globex Corp" for i in range(3)]
    rows += ["00U1,Twin One,Retail,Initech", "00U2,Twin Two,Retail,Initech"]
    rows += ["00I1,Initech,Software,", "00I2,Initech,Software,"]  # two accounts, one name
    rows += [f"00X{i},Other {i},Software," for i in range(4)]
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\nname = "Account Name"\nindustry = "Industry"\n'
    )
    dataset, column, head = _account_groups_of(tmp_path, rows, config)
    assert column == "parent_account"
    assert head["00S0"] == "001A" and head["00T2"] == "001B" and head["001A"] == "001A"
    # Two accounts naming one parent the table cannot tell are one group all the same.
    assert head["00U1"] == head["00U2"] == "Initech" and len(head) == 12
    assert "parent_account" not in dataset.attributes.all
    (stray,) = [p for p in dataset.report.warnings if "not in the accounts table" in p.message]
    assert stray.message.startswith(
        '2 accounts name a parent that is not in the accounts table ("Initech"; a deleted '
        "record, one the export left out, or a name that several accounts have): those naming "
        "the same one are one group (1 group)"
    )
    # Names in a column that does not say parent link nothing (a competitor, a reseller).
    rows[0] = "Account ID,Account Name,Industry,Reseller"
    path = write_project(tmp_path / "other", {"accounts.csv": "\n".join(rows) + "\n"}, config)
    assert account_groups(loading.load_tables(path).tables["accounts"]) == ("", {})


def test_brazilian_amounts_and_portuguese_size_bands_are_read(tmp_path):
    """A first user's RD Station + Vindi exports: "R$ 12.345,67" stopped validate ("4,000
    values are not numbers") whatever decimal and currency said, and "Mais de 1000" (1000+)
    made every band of the column an error, "201-500" and "51-200" included."""
    accounts = (
        "ID;Segmento;Nº de funcionários\n"
        "1;Saúde;11-50\n2;Varejo;51-200\n3;Saúde;Mais de 1000\n4;Varejo;201-500\n"
        "5;Varejo;nenhum\n"
    )
    deals = (
        "ID;Empresa;Status;Criada;Fechada;Valor\n"
        'D1;1;Ganha;01/02/2024;01/03/2024;"R$ 12.345,67"\n'
        'D2;2;Perdida;01/02/2024;05/03/2024;"R$27.767,52"\n'
        'D3;3;Ganha;01/02/2024;09/03/2024;"BRL 1.000,00"\n'
    )
    config = (
        '[tables.accounts]\npath = "empresas.csv"\ndelimiter = ";"\n'
        "[tables.accounts.columns]\n"
        'account_id = "ID"\nindustry = "Segmento"\nemployees = "Nº de funcionários"\n'
        '[tables.opportunities]\npath = "negociacoes.csv"\ndelimiter = ";"\ndecimal = ","\n'
        'date_format = "%d/%m/%Y"\n[tables.opportunities.columns]\n'
        'opportunity_id = "ID"\naccount_id = "Empresa"\nstage = "Status"\n'
        'created_at = "Criada"\nclosed_at = "Fechada"\namount = "Valor"\n'
        '[tables.opportunities.values.stage]\n"Ganha" = "won"\n"Perdida" = "lost"\n'
    )
    path = write_project(tmp_path, {"empresas.csv": accounts, "negociacoes.csv": deals}, config)
    report = validation.validate(path)
    (error,) = report.errors
    assert error.message.startswith('1 values are not numbers ("nenhum")')
    assert error.rows == [6]
    assert '[tables.accounts.values.employees] ("nenhum" = "<the figure>")' in error.fix
    bands = [p for p in report.warnings if "values are ranges" in p.message]
    assert bands and bands[0].message.startswith("4 values are ranges or approximate figures")
    # Recoded, the column reads; the amounts are reais.
    fixed = config.replace(
        'employees = "Nº de funcionários"\n',
        'employees = "Nº de funcionários"\n[tables.accounts.values.employees]\n"nenhum" = "0"\n',
    )
    path = write_project(
        tmp_path / "fixed", {"empresas.csv": accounts, "negociacoes.csv": deals}, fixed
    )
    dataset = loading.load_tables(path)
    employees = dataset.tables["accounts"].set_index("account_id")["employees"]
    assert employees.to_dict() == {"1": 11.0, "2": 51.0, "3": 1000.0, "4": 201.0, "5": 0.0}
    amounts = dataset.tables["opportunities"]["amount"].tolist()
    assert amounts == pytest.approx([12345.67, 27767.52, 1000.0])
    assert dataset.currency == "R$"


def test_a_russian_bitrix24_export_is_read_as_exported(tmp_path):
    """A first user's Bitrix24 + 1C exports (cp1251, ";", decimal commas, Russian headers):
    "125 000 руб." was no number, "более 500" and "менее 50" no size, the currency column
    "Валюта" unread, and invoices naming a company «Атлант-Трейд» where the CRM wrote
    "Атлант-Трейд" matched no account, while two names sharing only their digits were
    "several accounts". Company names lost every Cyrillic letter when compared."""
    companies = (
        "ID;Название компании;Сфера деятельности;Количество сотрудников;Ответственный\n"
        "1;ИП «Атлант-Трейд»;Производство;менее 50;Сидоров Дмитрий\n"
        "2;ООО «Вектор-Софт 12»;Информационные технологии;более 500;Иванова Анна\n"
        "3;ООО «Гранит-Торг 12»;Торговля;50-250;Сидоров Дмитрий\n"
        "4;ООО «Вектор»;Торговля;от 50 до 250;Иванова Анна\n"
        # Another company of the same name and another legal form.
        "5;АО «Атлант-Трейд»;Торговля;более 500;Иванова Анна\n"
    )
    invoices = (
        "Контрагент;Дата;Номенклатура;Сумма;Валюта\n"
        'ИП "Атлант-Трейд";01.02.2025;Подписка;12 500,00;RUB\n'
        'ООО "Вектор-Софт 12";03.02.2025;Подписка;125 000 руб.;руб.\n'
        "OOO «вектор»;05.02.2025;Подписка;1\u00a0234,50 рублей;RUB\n"
    )
    config = (
        '[tables.accounts]\npath = "companies.csv"\nencoding = "cp1251"\ndelimiter = ";"\n'
        "[tables.accounts.columns]\n"
        'account_id = "ID"\nname = "Название компании"\nindustry = "Сфера деятельности"\n'
        'employees = "Количество сотрудников"\n'
        '[tables.subscriptions]\npath = "invoices.csv"\nencoding = "cp1251"\ndelimiter = ";"\n'
        'decimal = ","\ndate_format = "%d.%m.%Y"\naccount_id_from = "accounts.name"\n'
        'drop = ["Номенклатура"]\n[tables.subscriptions.columns]\n'
        'name = "Контрагент"\nstart_date = "Дата"\nmrr = "Сумма"\n'
    )
    files = {
        "companies.csv": companies.encode("cp1251"),
        "invoices.csv": invoices.encode("cp1251"),
    }
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    assert not dataset.report.errors
    accounts = dataset.tables["accounts"].set_index("account_id")
    assert accounts["employees"].tolist() == [1.0, 500.0, 50.0, 50.0, 500.0]
    subs = dataset.tables["subscriptions"].set_index("account_id")
    assert subs["arr"].to_dict() == {"1": 150_000.0, "2": 1_500_000.0, "4": 14_814.0}
    messages = " ".join(p.message for p in dataset.report.problems)
    assert "several accounts share" not in messages and "not in accounts" not in messages
    assert "Валюта" not in messages or "not used" not in messages
    # "Ответственный" (our salesperson) is no trait.
    from icp_research.data.trust import _assigned_word

    assert _assigned_word("Ответственный") == "ответственныи"
    # "RUB" and "руб." in the currency column are one currency, which the reports write.
    assert set(dataset.report.currencies) == {"RUB "} and dataset.currency == "RUB "
    # The rouble sign, and hryvnias, read the same way.
    values, bad = parse_numbers(pd.Series(["1 200 ₽", "950 грн", "₽1 200,50"]), decimal=",")
    assert values.tolist() == [1200.0, 950.0, 1200.5] and not bad.any()


def test_a_monday_board_in_groups_is_read_with_its_group_as_a_column(tmp_path):
    """A first user's monday.com board ("Export board to Excel"): the board's name, then per
    group a title row, the header and the items, a blank row between groups; the deal's
    outcome is its group. Read as a table, the repeated headers were data ("Deal Value" is no
    number), the titles and blanks rows without an account, and no setting read the group;
    "Creation Log" holds who created the item before the date."""
    from openpyxl import Workbook

    header = ["Name", "Company", "Status", "Deal Value", "Creation Log"]
    book = Workbook()
    sheet = book.active
    sheet.append(["Sales Pipeline"])
    for group, items in (
        ("Active Deals", [("D1", "Acme", "Demo", "$3,500", "Mark Lee Oct 28, 2026 2:52 PM")]),
        (
            "Closed Won",
            [
                ("D2", "Beta", "Won", "$7,500", "Jane Doe Sep 14, 2026 12:47 PM"),
                ("D3", "Acme", "Negotiation", "$1,000", "Tom Becker Aug 4, 2026 11:01 AM"),
            ],
        ),
        ("Closed Lost", [("D4", "Beta", "Lost", "$2,000", "Jane Doe Jul 1, 2026 9:00 AM")]),
    ):
        if sheet.max_row > 1:
            sheet.append([])
        sheet.append([group])
        sheet.append(header)
        for item in items:
            sheet.append(list(item))
    book.save(tmp_path / "board.xlsx")
    config = (
        '[tables.accounts]\npath = "accounts.csv"\n'
        '[tables.opportunities]\npath = "board.xlsx"\nheader_row = 3\ngroup_column = "Group"\n'
        'date_format = "* %b %d, %Y %I:%M %p"\ndrop = ["Status"]\n'
        "[tables.opportunities.columns]\n"
        'opportunity_id = "Name"\naccount_id = "Company"\nstage = "Group"\n'
        'created_at = "Creation Log"\namount = "Deal Value"\n'
        '[tables.opportunities.values.stage]\n"Active Deals" = "open"\n"Closed Won" = "won"\n'
        '"Closed Lost" = "lost"\n'
    )
    files = {"accounts.csv": "account_id\nAcme\nBeta\n"}
    dataset = loading.load_tables(write_project(tmp_path, files, config))
    assert not dataset.report.errors
    deals = dataset.tables["opportunities"].set_index("opportunity_id")
    assert deals["stage"].to_dict() == {"D1": "open", "D2": "won", "D3": "won", "D4": "lost"}
    assert deals["amount"].tolist() == [3500.0, 7500.0, 1000.0, 2000.0]
    assert deals.loc["D3", "created_at"] == pd.Timestamp("2026-08-04")
    (note,) = [p for p in dataset.report.infos if "read as a board in groups" in p.message]
    assert note.message.startswith(
        "read as a board in groups: 4 items in 3 groups; 2 group titles, 2 repeated headers "
        "and 2 blank rows left out"
    )


def test_a_deal_source_kept_on_the_accounts_is_not_tested_twice(tmp_path):
    """A monday.com board read as accounts (rollup) kept its "Source" as the attribute
    source, and the kit derived lead_source from the same column: two predictors that are
    one, each enlarging the family of tests."""
    board = (
        "Deal,Company,Stage,Source,Created\n"
        "D1,Acme,won,Partner,2025-01-01\nD2,Acme,lost,Partner,2025-03-01\n"
        "D3,Beta,lost,Inbound,2025-02-01\nD4,Gamma,won,Event,2025-02-03\n"
    )
    config = (
        '[tables.accounts]\npath = "board.csv"\nrollup = true\ndrop = ["Deal", "Stage", '
        '"Created"]\n[tables.accounts.columns]\naccount_id = "Company"\n'
        '[tables.opportunities]\npath = "board.csv"\n[tables.opportunities.columns]\n'
        'opportunity_id = "Deal"\naccount_id = "Company"\nstage = "Stage"\n'
        'source = "Source"\ncreated_at = "Created"\n'
    )
    dataset = loading.load_tables(write_project(tmp_path, {"board.csv": board}, config))
    assert (
        "source" in dataset.tables["accounts"] and "lead_source" not in dataset.tables["accounts"]
    )
    (note,) = [p for p in dataset.report.infos if "is not kept apart" in p.message]
    assert "what the accounts' source says (100% of 3 accounts with both)" in note.message
