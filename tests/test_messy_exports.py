"""Shapes a first CRM export (HubSpot-style) arrives in: a totals row, decimal commas, date-times
next to dates, a mistyped date pattern. Each is read right or named in one line with its fix."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_research.data import loading, validation
from icp_research.data.cleaning import parse_dates, parse_numbers
from icp_research.data.config import load_config
from icp_research.errors import ConfigError

from .conftest import write_project

ACCOUNTS = "id,name\nA1,Acme\nA2,Beta\n"
DEALS_CONFIG = """
[tables.accounts]
path = "accounts.csv"
[tables.accounts.columns]
account_id = "id"
name = "name"
[tables.opportunities]
path = "deals.csv"
{deal_settings}
[tables.opportunities.columns]
opportunity_id = "Record ID"
account_id = "Account"
stage = "Stage"
created_at = "Created"
amount = "Amount"
"""


def _project(tmp_path, deals: str, deal_settings: str = "", accounts: str = ACCOUNTS):
    return write_project(
        tmp_path,
        {"accounts.csv": accounts, "deals.csv": deals},
        DEALS_CONFIG.format(deal_settings=deal_settings),
    )


def _validate(config, capsys) -> tuple[int, list[str]]:
    from icp_research.cli import main

    code = main(["validate", "--config", str(config)])
    captured = capsys.readouterr()
    output = captured.out + captured.err  # warnings on stdout, errors on stderr
    assert "Traceback" not in output and "unexpected" not in output, output
    return code, output.splitlines()


# 1. Totals rows and masks with missing values


def test_a_deal_with_no_stage_and_no_account_is_reported_not_a_crash(tmp_path, capsys):
    # O2 (lost, no account) makes the "closed deals with no account" check run; O3 has no stage,
    # so a mask from the stage column holds <NA> on its row.
    deals = (
        "Record ID,Account,Stage,Created,Amount\n"
        "O1,A1,Won,2024-01-01,100\nO2,,Lost,2024-02-01,200\nO3,,,2024-03-01,\n"
    )
    code, lines = _validate(_project(tmp_path, deals), capsys)
    assert code == 2
    assert any("1 rows have no stage" in line and "(row 4)" in line for line in lines), lines
    # Only the lost deal is a closed deal with no account; the stage-less one is not counted.
    assert any("1 won/lost deals have no account" in line and "(row 3)" in line for line in lines)


def test_a_trailing_totals_row_of_deals_is_left_out_with_a_note(tmp_path, capsys):
    deals = (
        "Record ID,Account,Stage,Created,Amount\n"
        "O1,A1,Won,2024-01-01,100\nO2,,Lost,2024-02-01,200\nTotal,1500 records,,,\n"
    )
    config = _project(tmp_path, deals)
    code, lines = _validate(config, capsys)
    assert code == 0, lines
    assert not any("row 4" in line for line in lines), lines  # a note: shown with --verbose
    notes = [p.line() for p in validation.validate(config).infos if "footer" in p.message]
    assert notes == [
        'deals.csv: 1 footer row dropped ("Total"): the export\'s totals and notices, not '
        "deals (row 4); fix: nothing to do; remove them from the export to silence this"
    ]
    deals_loaded = loading.load_tables(config).tables["opportunities"]
    assert deals_loaded["opportunity_id"].tolist() == ["O1", "O2"]


def test_a_totals_row_of_companies_does_not_become_an_account(tmp_path):
    accounts = "\ufeffRecord ID;Company name;Industry\r\n1;Acme;Retail\r\n2;Beta;\r\nGrand TOTAL;400 records;\r\n"
    deals = "Record ID,Account,Stage,Created,Amount\nO1,1,Won,2024-01-01,100\n"
    config = write_project(
        tmp_path,
        {"accounts.csv": accounts, "deals.csv": deals},
        DEALS_CONFIG.format(deal_settings="").replace(
            'account_id = "id"\nname = "name"', 'account_id = "Record ID"\nname = "Company name"'
        ),
    )
    dataset = loading.load_tables(config)
    assert dataset.tables["accounts"]["account_id"].tolist() == ["1", "2"]
    note = next(p for p in dataset.report.infos if "footer row" in p.message)
    assert note.file == "accounts.csv" and note.rows == [4]
    assert note.message.startswith('1 footer row dropped ("Grand TOTAL"): ')
    assert note.message.endswith("not accounts")


def test_only_a_last_row_labelled_total_is_dropped(tmp_path):
    # "Total" as the id of a row that is not the last one is data (and here a duplicate-free id).
    accounts = "id,name\nTotal,Total Corp\nA2,Beta\nTotals Ltd,Gamma\n"
    deals = "Record ID,Account,Stage,Created,Amount\nO1,A2,Won,2024-01-01,100\n"
    dataset = loading.load_tables(_project(tmp_path, deals, accounts=accounts))
    assert dataset.tables["accounts"]["account_id"].tolist() == ["Total", "A2", "Totals Ltd"]
    assert not any("footer" in p.message for p in dataset.report.problems)


# 2. Decimal marks


def test_a_comma_is_a_thousands_separator_only_in_groups_of_three():
    values, bad = parse_numbers(
        pd.Series(["553.643,79", "12,5", "1,2345", "1,234.50", "$1,200,000", "1,200k", "1234"])
    )
    assert bad.tolist() == [True, True, True, False, False, False, False]
    assert values.iloc[3:].tolist() == [1234.5, 1_200_000.0, 1_200_000.0, 1234.0]


def test_a_point_is_a_thousands_separator_only_in_groups_of_three_with_a_decimal_comma():
    values, bad = parse_numbers(
        pd.Series(["553.643,79", "1.234", "2,5", "1234.56", "12.5"]), decimal=","
    )
    assert bad.tolist() == [False, False, False, True, True]
    assert values.iloc[:3].tolist() == [553_643.79, 1234.0, 2.5]


def test_decimal_comma_amounts_are_an_error_that_names_the_decimal_setting(tmp_path, capsys):
    deals = (
        "Record ID,Account,Stage,Created,Amount\n"
        'O1,A1,Won,2024-01-01,"553.643,79"\nO2,A2,Lost,2024-02-01,"12,5"\n'
    )
    code, lines = _validate(_project(tmp_path, deals), capsys)
    assert code == 2
    error = next(line for line in lines if "not numbers" in line)
    assert '"Amount -> amount": 2 values are not numbers ("553.643,79", "12,5")' in error
    assert "(rows 2, 3)" in error
    assert 'add decimal = "," under [tables.opportunities]' in error


def test_decimal_point_amounts_in_a_decimal_comma_table_name_the_setting(tmp_path, capsys):
    deals = "Record ID,Account,Stage,Created,Amount\nO1,A1,Won,2024-01-01,1234.56\n"
    code, lines = _validate(_project(tmp_path, deals, 'decimal = ","'), capsys)
    assert code == 2
    error = next(line for line in lines if "not numbers" in line)
    assert '"1234.56"' in error and 'add decimal = "." under [tables.opportunities]' in error


def test_an_unmapped_decimal_comma_column_is_text_with_a_warning(tmp_path):
    accounts = 'id,name,Revenue\nA1,Acme,"553.643,79"\nA2,Beta,"1.234,5"\n'
    deals = "Record ID,Account,Stage,Created,Amount\nO1,A1,Won,2024-01-01,100\n"
    dataset = loading.load_tables(_project(tmp_path, deals, accounts=accounts))
    assert dataset.tables["accounts"]["revenue"].tolist() == ["553.643,79", "1.234,5"]
    warning = next(p for p in dataset.report.warnings if "decimal mark" in p.message)
    assert warning.column == "Revenue -> revenue" and warning.rows == [2, 3]
    assert 'add decimal = "," under [tables.accounts]' in warning.fix


# 3. A date pattern that cannot be compiled


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            'date_format = "%d/%m/%Y%"',
            '[tables.opportunities]: date_format = "%d/%m/%Y%" is not a valid date pattern '
            "(stray %); fix: ",
        ),
        (
            'date_format = ["%d/%m/%Y %H:%M", "%Q"]',
            '[tables.opportunities]: date_format = ["%d/%m/%Y %H:%M", "%Q"]: "%Q" is not a '
            "valid date pattern (%Q is not a date code); fix: ",
        ),
        ("date_format = []", "[tables.opportunities]: date_format = [] must be"),
    ],
)
def test_a_malformed_date_pattern_is_a_config_error(tmp_path, capsys, setting, message):
    config = _project(tmp_path, "Record ID,Account,Stage,Created,Amount\n", setting)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert message in str(caught.value)
    code, lines = _validate(config, capsys)
    assert code == 2 and any(message in line for line in lines), lines


# 4. Date suggestions and several patterns


def test_undeclared_date_times_suggest_the_pattern_that_reads_them(tmp_path):
    deals = (
        "Record ID,Account,Stage,Created,Amount\n"
        "O1,A1,Won,27/06/2025 06:00,100\nO2,A2,Lost,13/01/2025 17:45,200\n"
    )
    report = validation.validate(_project(tmp_path, deals))
    error = next(p.line() for p in report.errors if "not dates" in p.message)
    assert 'add date_format = "%d/%m/%Y %H:%M" under [tables.opportunities]' in error


def test_a_declared_pattern_that_misses_some_values_suggests_a_list(tmp_path):
    deals = (
        "Record ID,Account,Stage,Created,Amount\n"
        "O1,A1,Won,27/06/2025 06:00,100\nO2,A2,Lost,31/03/2025,200\n"
    )
    report = validation.validate(_project(tmp_path, deals, 'date_format = "%d/%m/%Y %H:%M"'))
    error = next(p.line() for p in report.errors if "not dates" in p.message)
    assert "(row 3)" in error
    assert 'declare date_format = ["%d/%m/%Y %H:%M", "%d/%m/%Y"] under [tables.opportunities]' in (
        error
    )


def test_a_list_of_date_patterns_reads_date_times_and_dates_in_one_table(tmp_path):
    deals = (
        "Record ID,Account,Stage,Created,Closed,Amount\n"
        "O1,A1,Won,27/06/2025 06:00,31/07/2025,100\nO2,A2,Lost,13/01/2025 17:45,02/03/2025,200\n"
    )
    config = _project(tmp_path, deals, 'date_format = ["%d/%m/%Y %H:%M", "%d/%m/%Y"]')
    config.write_text(config.read_text() + 'closed_at = "Closed"\n')
    dataset = loading.load_tables(config)
    assert dataset.report.ok
    frame = dataset.tables["opportunities"]
    assert frame["created_at"].tolist() == [pd.Timestamp("2025-06-27"), pd.Timestamp("2025-01-13")]
    assert frame["closed_at"].tolist() == [pd.Timestamp("2025-07-31"), pd.Timestamp("2025-03-02")]
    assert load_config(config).tables["opportunities"].date_format == (
        "%d/%m/%Y %H:%M",
        "%d/%m/%Y",
    )


def test_each_value_is_read_by_the_first_pattern_that_fits_it():
    dates, bad = parse_dates(
        pd.Series(["01/02/2025", "2025-03-04", "nope", None]), ("%d/%m/%Y", "%Y-%m-%d")
    )
    assert dates.iloc[:2].tolist() == [pd.Timestamp("2025-02-01"), pd.Timestamp("2025-03-04")]
    assert bad.tolist() == [False, False, True, False]


def test_cells_that_list_several_accounts_are_named_as_such(tmp_path):
    # HubSpot's "Associated Company IDs" holds every company of a deal: "A1;A2".
    deals = (
        "Record ID,Account,Stage,Created,Amount\n"
        "D1,A1;A2,won,2025-01-05,100\nD2,A2,lost,2025-02-05,200\nD3,A2;A1,won,2025-03-05,300\n"
    )
    dataset = loading.load_dataset(_project(tmp_path, deals))
    warning = next(p for p in dataset.report.warnings if "not in the accounts table" in p.message)
    assert warning.message.startswith("2 rows (67%) refer to accounts that are not in the")
    assert warning.fix.startswith('some cells list several accounts separated by ";": map a column')
    assert "Associated Company IDs (Primary)" in warning.fix


def test_rows_are_named_by_their_line_in_the_file_after_blank_lines(tmp_path):
    # Blank lines (and lines of delimiters only) are no rows, and the rows after them keep
    # their own line numbers in the messages.
    config = write_project(
        tmp_path,
        {"accounts.csv": "account_id,employees\nA1,10\n\nA2,x\n,\n  \nA3,30\nA4,many\n"},
        '[tables.accounts]\npath = "accounts.csv"\n[attributes]\nnumeric = ["employees"]\n',
    )
    dataset = loading.load_dataset(config)
    assert dataset.tables["accounts"]["account_id"].tolist() == ["A1", "A2", "A3", "A4"]
    (problem,) = [p for p in dataset.report.problems if "not numbers" in p.message]
    assert problem.rows == [4, 8]
